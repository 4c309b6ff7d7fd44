"""Running the app on uvicorn: in the foreground (``tsmnet serve``) or on a background thread
(tests, benchmarks), always on a real socket.

uvicorn's WebSocket limits bound what a client can make the server hold: one message is at
most :data:`WS_MAX_BYTES` (a raw 2K frame), and at most :data:`WS_MAX_QUEUE` received messages
wait per connection before uvicorn stops reading its socket (TCP then slows the client).

Messages are not compressed (no ``permessage-deflate``, which browsers and the ``websockets``
client offer by default): frames are JPEG or raw pixels, which deflate hardly shrinks, and
compressing a raw 224 x 224 frame cost the client 5 ms of CPU per frame on the benchmark's
machine, a sixth of the model's step (docs/performance.md).
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn
from starlette.applications import Starlette

WS_MAX_BYTES = 8 * 2**20
WS_MAX_QUEUE = 4


def config(app: Starlette, host: str = '127.0.0.1', port: int = 8000,
           log_level: str = 'info', **kwargs: object) -> uvicorn.Config:
    """uvicorn's config for the app, with the WebSocket limits above."""
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan='on',
                          ws_max_size=WS_MAX_BYTES, ws_max_queue=WS_MAX_QUEUE,
                          ws_per_message_deflate=False, **kwargs)


def run(app: Starlette, host: str = '127.0.0.1', port: int = 8000,
        log_level: str = 'info') -> None:
    """Serve ``app`` until interrupted (Ctrl-C or SIGTERM)."""
    uvicorn.Server(config(app, host, port, log_level)).run()


def free_port(host: str = '127.0.0.1') -> int:
    """A TCP port free on ``host`` now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class BackgroundServer:
    """uvicorn serving ``app`` on a thread of this process, on a loopback port.

    Example::

        with BackgroundServer(create_app(predictor)) as server:
            urllib.request.urlopen(f'{server.url}/healthz')

    Args:
        app: The ASGI app.
        host: Defaults to ``'127.0.0.1'``.
        port: Defaults to a free port.
        timeout: Seconds to wait for the server to start. Defaults to 30.
    """

    def __init__(self, app: Starlette, host: str = '127.0.0.1', port: int | None = None,
                 timeout: float = 30.0) -> None:
        self.host, self.port = host, port or free_port(host)
        # log_config=None: uvicorn's own logging set-up (logging.config.dictConfig) closes
        # every handler of the process, e.g. the file of an MMEngine logger still in use
        self.server = uvicorn.Server(config(app, self.host, self.port, log_level='warning',
                                            log_config=None))
        self.timeout = timeout
        self._thread = threading.Thread(target=self.server.run, name='tsmnet-uvicorn',
                                        daemon=True)

    @property
    def url(self) -> str:
        return f'http://{self.host}:{self.port}'

    @property
    def ws_url(self) -> str:
        return f'ws://{self.host}:{self.port}'

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + self.timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f'uvicorn did not start on {self.url} within '
                                   f'{self.timeout} s')
            time.sleep(0.02)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.server.should_exit = True
        self._thread.join(self.timeout)
