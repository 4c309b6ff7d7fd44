"""Downloading released checkpoints through PyTorch's hub machinery.

Files go to ``torch.hub``'s cache (``$TORCH_HOME/hub/checkpoints``, ``~/.cache/torch`` by
default), with a progress bar, and the sha256 prefix that MMAction2's file names carry
(``..._20220831-64d69186.pth``) is checked: ``torch.hub.download_url_to_file`` writes to a
temporary file and moves it into place only when the download is complete and its hash
matches, so a mismatch or an interrupted download leaves nothing in the cache.

``TSMNET_WEIGHTS_MIRROR=URL`` replaces the scheme and host (and any path prefix given) of every
download URL, the path being kept: for mirrors and air-gapped sites.
"""

from __future__ import annotations

import os
import re
import sys
import urllib.error
import uuid
import zipfile
from http.client import HTTPException
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import torch.hub
from mmengine.logging import print_log

__all__ = ['MIRROR_ENV', 'WeightsDownloadError', 'cache_path', 'download_weights',
           'mirrored_url', 'sha256_prefix']

#: The environment variable naming a mirror of the weights' host.
MIRROR_ENV = 'TSMNET_WEIGHTS_MIRROR'

_HASH = re.compile(r'-([0-9a-f]{8,64})\.[A-Za-z0-9]+$')


class WeightsDownloadError(OSError):
    """A checkpoint could not be downloaded (offline, refused, interrupted, wrong hash); the
    message is one line naming the URL and where the file can be put by hand."""


def mirrored_url(url: str, mirror: str | None = None) -> str:
    """``url`` on the mirror: its scheme and host replaced by ``mirror``'s (default
    ``$TSMNET_WEIGHTS_MIRROR``; unset or empty: ``url`` unchanged), its path kept and
    appended to any path of the mirror.

    Raises:
        ValueError: The mirror is not an ``http(s)://`` or ``file://`` URL.
    """
    mirror = os.environ.get(MIRROR_ENV, '') if mirror is None else mirror
    if not mirror:
        return url
    base = urlsplit(mirror)
    if base.scheme not in ('http', 'https', 'file') or (base.scheme != 'file' and
                                                         not base.netloc):
        raise ValueError(f'{MIRROR_ENV} must be a URL such as https://mirror.example.org, '
                         f'got {mirror!r}')
    parts = urlsplit(url)
    path = base.path.rstrip('/') + parts.path
    return urlunsplit((base.scheme, base.netloc, path, parts.query, ''))


def sha256_prefix(url: str) -> str | None:
    """The hex sha256 prefix a file name carries (``name-64d69186.pth`` -> ``'64d69186'``),
    None if it carries none."""
    found = _HASH.search(urlsplit(url).path.rsplit('/', 1)[-1])
    return found.group(1) if found else None


def cache_path(url: str) -> Path:
    """Where ``torch.hub`` keeps the file of ``url``: ``<hub dir>/checkpoints/<file name>``."""
    name = urlsplit(url).path.rsplit('/', 1)[-1]
    if not name:
        raise ValueError(f'URL {url!r} names no file')
    return Path(torch.hub.get_dir()) / 'checkpoints' / name


def download_weights(url: str, *, check_hash: bool = True, progress: bool = True) -> Path:
    """The local file of a checkpoint URL, downloaded into the hub cache if not there yet.

    Args:
        url: The published URL (the mirror of ``$TSMNET_WEIGHTS_MIRROR`` is applied).
        check_hash: Verify the sha256 prefix of the file name (when it carries one).
            Defaults to True.
        progress: Show a progress bar on stderr where stderr is a terminal; elsewhere (a
            log, CI, a pipe) a bar would be one line per percent, so only the start and the
            end are logged. Defaults to True.

    Returns:
        The cached file (``cache_path(url)``; the cache is keyed by the file name).

    Raises:
        WeightsDownloadError: The download failed or the hash did not match; nothing is
            cached then.
    """
    target = cache_path(url)
    if target.is_file():
        return target
    source = mirrored_url(url)
    prefix = sha256_prefix(url) if check_hash else None
    hand = f'download it by hand to {target}'
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WeightsDownloadError(f'cannot create the weights cache {target.parent} '
                                   f'({err.strerror or err}); set TORCH_HOME to a writable '
                                   f'folder') from err
    print_log(f'downloading {source} to {target}', logger='current')
    # torch.hub writes a .partial file and moves it to `partial` when complete and its hash
    # matches; `partial` becomes `target` once its structure is checked too (a file without a
    # hash in its name, cut short, would otherwise be cached: urllib does not raise on a body
    # shorter than its Content-Length)
    partial = target.with_name(f'.{target.name}.{uuid.uuid4().hex}.download')
    try:
        torch.hub.download_url_to_file(source, str(partial), hash_prefix=prefix,
                                       progress=progress and stderr_is_terminal())
        if prefix is None:
            _check_complete(partial, source, target)
        os.replace(partial, target)
    except WeightsDownloadError:
        raise
    except RuntimeError as err:  # torch.hub's hash check
        if 'invalid hash value' not in str(err):
            raise
        raise WeightsDownloadError(f'downloaded {source} but its sha256 does not start with '
                                   f'{prefix} (a corrupt or different file); nothing was '
                                   f'cached: {hand} after checking it') from err
    except urllib.error.HTTPError as err:
        raise WeightsDownloadError(f'cannot download {source}: HTTP {err.code} {err.reason}; '
                                   f'{hand}') from err
    except (urllib.error.URLError, HTTPException, OSError, ValueError) as err:
        reason = getattr(err, 'reason', None) or err
        if isinstance(err, HTTPException):
            reason = f'the connection closed early ({type(err).__name__})'
        raise WeightsDownloadError(f'cannot download {source} ({_one_line(reason)}): '
                                   f'{hand}, or set {MIRROR_ENV} to a mirror') from err
    finally:
        partial.unlink(missing_ok=True)
    print_log(f'downloaded {target.name} ({target.stat().st_size / 2**20:.1f} MiB)',
              logger='current')
    return target


def stderr_is_terminal() -> bool:
    """Whether a progress bar on stderr would be seen as one line redrawn in place."""
    return sys.stderr.isatty()


def _check_complete(path: Path, source: str, target: Path) -> None:
    """Raise :class:`WeightsDownloadError` if a downloaded zip checkpoint (what
    ``torch.save`` writes) is cut short: its end-of-archive record is missing."""
    with path.open('rb') as f:
        is_zip = f.read(4) == b'PK\x03\x04'
    if is_zip and not zipfile.is_zipfile(path):
        raise WeightsDownloadError(f'cannot download {source} (the file arrived incomplete: '
                                   f'the connection closed early): download it by hand to '
                                   f'{target}')


def _one_line(reason: object) -> str:
    text = str(getattr(reason, 'strerror', None) or reason)
    return ' '.join(text.split())
