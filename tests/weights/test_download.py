"""Downloads through torch.hub from a loopback HTTP server (nothing leaves the machine): the
cache under TORCH_HOME, the sha256 prefix of MMAction2's file names, nothing cached on a
mismatch or an interrupted download, TSMNET_WEIGHTS_MIRROR, and the offline message."""

from __future__ import annotations

import hashlib
import http.server
import io
import re
import socket
import threading
from pathlib import Path

import pytest
import torch

import tsmnet
from tsmnet.weights import download
from tsmnet.weights.download import (
    MIRROR_ENV,
    WeightsDownloadError,
    cache_path,
    download_weights,
    mirrored_url,
    sha256_prefix,
)
from tsmnet.weights.zoo import ENTRIES

MBV2 = 'tsm_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-100e_kinetics400-rgb'
ROOT = '/mmaction/v1.0/recognition/tsm'


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    truncate: set[str] = set()
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802  (http.server's name)
        self.requests.append(self.path)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if self.path in self.truncate:  # the connection drops half way
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    """A loopback HTTP server in a thread: ``(base_url, files, truncated_paths, requests)``."""
    handler = type('Handler', (_Handler,), {'files': {}, 'truncate': set(), 'requests': []})
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{httpd.server_port}', handler.files, handler.truncate, \
        handler.requests
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture(autouse=True)
def _torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert torch.hub.get_dir() == str(tmp_path / 'torch' / 'hub')


def _checkpoint_bytes(model: torch.nn.Module) -> bytes:
    """A checkpoint in MMAction2's released layout: ``meta`` and ``state_dict``."""
    buffer = io.BytesIO()
    torch.save({'meta': {'mmengine_version': '0.10.7', 'epoch': 100, 'iter': 2000,
                         'seed': 0, 'dataset_meta': None},
                'state_dict': model.state_dict()}, buffer)
    return buffer.getvalue()


@pytest.fixture(scope='module')
def model_and_file():
    """A small zoo model (random weights) and its checkpoint bytes, named as MMAction2 names
    its files: ``<config>_<date>-<first 8 hex digits of the sha256>.pth``."""
    model = tsmnet.create_model(MBV2, num_segments=2)
    body = _checkpoint_bytes(model)
    name = f'{MBV2}_20230414-{hashlib.sha256(body).hexdigest()[:8]}.pth'
    return model, body, name


def _cached(tmp_path: Path) -> list[Path]:
    folder = tmp_path / 'torch' / 'hub' / 'checkpoints'
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize('terminal', [True, False], ids=['terminal', 'log'])
def test_download_into_hub_cache_and_load(server, model_and_file, tmp_path, capsys,
                                          monkeypatch, terminal):
    monkeypatch.setattr(download, 'stderr_is_terminal', lambda: terminal)
    base, files, _, requests = server
    model, body, name = model_and_file
    files[f'{ROOT}/{MBV2}/{name}'] = body
    url = f'{base}{ROOT}/{MBV2}/{name}'
    loaded = tsmnet.create_model(MBV2, pretrained=url, num_segments=2)
    assert _cached(tmp_path) == [tmp_path / 'torch' / 'hub' / 'checkpoints' / name]
    assert (tmp_path / 'torch' / 'hub' / 'checkpoints' / name).read_bytes() == body
    for (key, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), key
    err = capsys.readouterr().err
    if terminal:  # torch.hub's progress bar: tqdm's (100%) where installed, else its own (100.0%)
        assert re.search(r'100(\.0)?%', err)
    else:  # a log gets no bar (torch.hub's own would be a line per percent)
        assert '%' not in err, err
    # a second time: from the cache, no request
    tsmnet.create_model(MBV2, pretrained=url, num_segments=2)
    assert len(requests) == 1


def test_hash_mismatch_caches_nothing(server, model_and_file, tmp_path):
    base, files, _, _ = server
    _, body, name = model_and_file
    wrong = name[:-len('12345678.pth')] + '00000000.pth'
    files[f'/{wrong}'] = body
    with pytest.raises(WeightsDownloadError, match='sha256 does not start with 00000000') as err:
        download_weights(f'{base}/{wrong}', progress=False)
    assert '\n' not in str(err.value)
    assert _cached(tmp_path) == []


@pytest.mark.parametrize('hashed', [True, False])
def test_interrupted_download_caches_nothing(server, model_and_file, tmp_path, hashed):
    base, files, truncate, _ = server
    _, body, name = model_and_file
    name = name if hashed else 'no_hash_in_this_name.pth'
    files[f'/{name}'] = body
    truncate.add(f'/{name}')
    with pytest.raises(WeightsDownloadError, match=f'cannot download {base}/{name}|sha256'):
        download_weights(f'{base}/{name}', progress=False)
    assert _cached(tmp_path) == []


def test_mirror_replaces_scheme_and_host(server, model_and_file, tmp_path, monkeypatch):
    base, files, _, requests = server
    _, body, name = model_and_file
    path = f'{ROOT}/{MBV2}/{name}'
    files[f'/mirror{path}'] = body
    monkeypatch.setenv(MIRROR_ENV, f'{base}/mirror/')
    published = f'https://download.openmmlab.com{path}'
    assert mirrored_url(published) == f'{base}/mirror{path}'
    assert download_weights(published, progress=False).read_bytes() == body
    assert requests == [f'/mirror{path}']
    # the zoo's own URLs go to the mirror too (this file is not the released one: its hash
    # is checked and refused, nothing cached)
    entry = ENTRIES[MBV2]
    files[f'/mirror{entry.url.split(".com", 1)[1]}'] = body
    with pytest.raises(WeightsDownloadError, match=f'{base}/mirror/mmaction/.*401127fd'):
        tsmnet.create_model(MBV2, pretrained=True)
    assert not cache_path(entry.url).exists()


def test_bad_mirror(monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, 'mirror.example.org')
    with pytest.raises(ValueError, match=MIRROR_ENV):
        mirrored_url('https://download.openmmlab.com/a/b.pth')


def test_offline_message_names_url_and_cache_path(tmp_path):
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    url = f'http://127.0.0.1:{port}{ROOT}/x/x_20220831-64d69186.pth'
    with pytest.raises(WeightsDownloadError) as err:
        download_weights(url, progress=False)
    message = str(err.value)
    assert '\n' not in message and url in message
    assert str(tmp_path / 'torch' / 'hub' / 'checkpoints' / 'x_20220831-64d69186.pth') in message
    assert _cached(tmp_path) == []


def test_file_put_by_hand_is_used(model_and_file):
    """Offline: the released file put at its cache path loads with no network."""
    model, body, _ = model_and_file
    entry = ENTRIES[MBV2]
    target = cache_path(entry.url)
    target.parent.mkdir(parents=True)
    target.write_bytes(body)
    loaded = tsmnet.create_model(MBV2, pretrained=True, num_segments=2)
    assert torch.equal(loaded.cls_head.fc_cls.weight, model.cls_head.fc_cls.weight)


def test_http_error(server):
    base, _, _, _ = server
    with pytest.raises(WeightsDownloadError, match='HTTP 404'):
        download_weights(f'{base}/missing-12345678.pth', progress=False)


def test_sha256_prefix():
    assert sha256_prefix(ENTRIES[MBV2].url) == '401127fd' == ENTRIES[MBV2].sha256
    assert sha256_prefix('https://x/a/plain.pth') is None
