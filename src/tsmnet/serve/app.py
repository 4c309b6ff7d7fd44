"""The ASGI application: the routes of ``tsmnet serve`` on Starlette.

- ``GET /``: the camera page (``static/index.html``, package data);
- ``POST /v1/classify``: a video upload (multipart field ``file``), scored as ``tsmnet
  predict`` scores a file (the same :class:`~tsmnet.predictor.Predictor`);
- ``WebSocket /v1/stream``: frames in, one JSON result per frame out (:mod:`.scheduler`);
- ``GET /healthz``, ``GET /v1/models``, ``GET /metrics`` (Prometheus text).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..models.recognizer import Recognizer
from ..video import TestProtocol, VideoError
from .frames import (
    JPEG_MAGIC,
    FrameError,
    decode_frame,
    parse_control,
    stream_input_size,
    to_model_input,
)
from .metrics import CONTENT_TYPE, Metrics
from .online import OnlineModel, StepFunction
from .scheduler import BatchScheduler, Stream, StreamLimitError

LOGGER = logging.getLogger(__name__)
MAX_TOP = 1000
# WebSocket close codes (RFC 6455): 1008 policy violation, 1013 try again later
CLOSE_BAD_REQUEST, CLOSE_TRY_LATER = 1008, 1013


class Classifier(Protocol):
    """What ``/v1/classify`` and the stream need of a predictor (``tsmnet predict``'s
    :class:`~tsmnet.predictor.Predictor` is one)."""

    model: Recognizer
    protocol: TestProtocol
    labels: list[str]
    channels_last: bool

    def __call__(self, path: str | Path, top: int = 5) -> Any:
        """A result with ``top`` ``[(index, label, prob)]``, ``views`` and ``seconds``."""


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """The server's limits.

    Args:
        model_name: Shown by ``/v1/models``.
        max_streams: WebSocket streams open at once; the next is refused (close code 1013).
        max_batch: Frames per model step (``B``).
        max_delay_ms: Milliseconds a frame may wait for others to join its step (``D``).
        max_upload_bytes: The largest ``/v1/classify`` request body (413 beyond).
        max_classify_queue: Uploads being scored or waiting; more get 503.
        runtime: What scores the uploads, shown by ``/v1/models``.
        precision: Its precision, likewise.
        stream_runtime: What steps the streams, likewise (``'eager'``, or ``'onnxruntime
            fp32'``, ``'openvino bf16'``... with the ``step`` that :func:`create_app` takes).
    """

    model_name: str = 'model'
    max_streams: int = 16
    max_batch: int = 16
    max_delay_ms: float = 5.0
    max_upload_bytes: int = 100 * 2**20
    max_classify_queue: int = 4
    runtime: str = 'eager'
    precision: str = 'fp32'
    stream_runtime: str = 'eager'


class _UploadTooLarge(Exception):
    pass


def _limited(receive: Callable[[], Awaitable[dict[str, Any]]], limit: int
             ) -> Callable[[], Awaitable[dict[str, Any]]]:
    """``receive`` that raises once the request body passes ``limit`` bytes."""
    total = 0

    async def limited() -> dict[str, Any]:
        nonlocal total
        message = await receive()
        if message['type'] == 'http.request':
            total += len(message.get('body', b''))
            if total > limit:
                raise _UploadTooLarge
        return message
    return limited


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({'error': message}, status_code=status)


def _parse_top(text: str | None, default: int = 5) -> int:
    if text is None:
        return default
    try:
        top = int(text)
    except ValueError:
        top = 0
    if not 1 <= top <= MAX_TOP:
        raise ValueError(f'top must be an integer in 1..{MAX_TOP}, got {text!r}')
    return top


class Server:
    """The state behind the routes: the predictor, the online model, the scheduler.

    Args:
        predictor: Scores uploads; its model (and its protocol and labels) also streams.
        config: Limits.
        step: The streams' step under another runtime, or None (the model's, eager).
    """

    def __init__(self, predictor: Classifier, config: ServeConfig,
                 step: StepFunction | None = None) -> None:
        self.predictor, self.config = predictor, config
        self.protocol = predictor.protocol
        self.size = stream_input_size(self.protocol)
        self.online = OnlineModel(predictor.model, self.size, predictor.channels_last, step)
        self.metrics = Metrics()
        self.scheduler: BatchScheduler | None = None
        self._decode = concurrent.futures.ThreadPoolExecutor(2, 'tsmnet-decode')
        self._classify = concurrent.futures.ThreadPoolExecutor(1, 'tsmnet-classify')
        self._classifying = 0
        self._uploads = Path(tempfile.mkdtemp(prefix='tsmnet-serve-'))

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        c = self.config
        self.scheduler = BatchScheduler(self.online, self._prepare, self.predictor.labels,
                                        self.metrics, c.max_streams, c.max_batch,
                                        c.max_delay_ms / 1e3)
        task = asyncio.create_task(self.scheduler.run(), name='tsmnet-scheduler')
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._decode.shutdown(wait=False, cancel_futures=True)
            self._classify.shutdown(wait=False, cancel_futures=True)
            shutil.rmtree(self._uploads, ignore_errors=True)

    def routes(self) -> list[Route | WebSocketRoute]:
        return [Route('/', self.page), Route('/healthz', self.healthz),
                Route('/v1/models', self.models), Route('/metrics', self.prometheus),
                Route('/v1/classify', self.classify, methods=['POST']),
                WebSocketRoute('/v1/stream', self.stream)]

    async def page(self, request: Request) -> Response:
        html = resources.files(__package__).joinpath('static/index.html').read_text('utf-8')
        return HTMLResponse(html)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({'status': 'ok', 'streams': self.metrics.streams})

    async def models(self, request: Request) -> Response:
        model = self.predictor.model
        return JSONResponse({'models': [{
            'name': self.config.model_name, 'runtime': self.config.runtime,
            'precision': self.config.precision, 'stream_runtime': self.config.stream_runtime,
            'num_classes': model.num_classes, 'labels': list(self.predictor.labels),
            'num_segments': model.num_segments, 'stream_input_size': self.size,
            'stream_window': self.online.window, 'protocol': dataclasses.asdict(self.protocol),
            'max_streams': self.config.max_streams, 'max_batch': self.config.max_batch,
            'max_delay_ms': self.config.max_delay_ms,
            'max_upload_bytes': self.config.max_upload_bytes}]})

    async def prometheus(self, request: Request) -> Response:
        return PlainTextResponse(self.metrics.render(), media_type=CONTENT_TYPE)

    async def classify(self, request: Request) -> Response:
        limit = self.config.max_upload_bytes
        too_large = f'the upload is larger than the limit of {limit} bytes'
        length = request.headers.get('content-length')
        if length is not None and length.isdigit() and int(length) > limit:
            self.metrics.classify['too_large'] += 1
            return _error(413, too_large)
        if self._classifying >= self.config.max_classify_queue:
            return _error(503, f'{self._classifying} uploads are being scored; try again later')
        self._classifying += 1
        path = self._uploads / f'{uuid.uuid4().hex}.video'  # never a name from the client
        try:
            try:
                top = _parse_top(request.query_params.get('top'))
                limited = Request(request.scope, _limited(request.receive, limit))
                async with limited.form(max_files=1, max_fields=4) as form:
                    upload = form.get('file')
                    if not isinstance(upload, UploadFile):
                        raise ValueError("send the video as a multipart/form-data file field "
                                         "named 'file'")
                    loop = asyncio.get_running_loop()
                    await loop.run_in_executor(self._decode, _save, upload, path)
                    name = upload.filename or 'upload'
            except _UploadTooLarge:
                self.metrics.classify['too_large'] += 1
                return _error(413, too_large)
            except Exception as err:  # a malformed body: Starlette's and multipart's errors
                self.metrics.classify['error'] += 1
                detail = getattr(err, 'detail', None) or str(err)
                return _error(400, f'bad request: {detail}')
            try:
                result = await asyncio.get_running_loop().run_in_executor(
                    self._classify, self.predictor, path, top)
            except VideoError as err:
                self.metrics.classify['error'] += 1
                return _error(422, str(err).replace(str(path), name))
            self.metrics.classify['ok'] += 1
            return JSONResponse({
                'model': self.config.model_name, 'video': name, 'views': result.views,
                'seconds': result.seconds,
                'top': [{'index': i, 'label': label, 'prob': prob}
                        for i, label, prob in result.top]})
        finally:
            self._classifying -= 1
            path.unlink(missing_ok=True)

    def _prepare(self, rgb: np.ndarray) -> torch.Tensor:
        return to_model_input(rgb, self.protocol, self.size)

    async def _decode_message(self, data: bytes) -> np.ndarray:
        """A frame message's pixels: a raw frame here (a copy), a JPEG on a decoding thread
        (milliseconds of work that would hold up every stream's messages)."""
        if data[:2] != JPEG_MAGIC:
            return decode_frame(data)
        return await asyncio.get_running_loop().run_in_executor(self._decode, decode_frame,
                                                                data)

    async def stream(self, websocket: WebSocket) -> None:
        if self.scheduler is None:
            raise RuntimeError('the app was run without its lifespan (uvicorn --lifespan on)')
        await websocket.accept()
        try:
            top = _parse_top(websocket.query_params.get('top'))
        except ValueError as err:
            await websocket.close(CLOSE_BAD_REQUEST, str(err)[:120])
            return
        try:
            stream = self.scheduler.open(top)
        except StreamLimitError:
            await websocket.close(CLOSE_TRY_LATER, f'server busy: {self.config.max_streams} '
                                  'streams open (--max-streams); try again later')
            return
        self.scheduler.post(stream, {'type': 'hello', 'stream': stream.id, 'top': top,
                                     'input_size': self.size, 'window': self.online.window})
        sender = asyncio.create_task(_send(websocket, stream), name=f'tsmnet-send-{stream.id}')
        number = 0
        try:
            while True:
                message = await websocket.receive()
                if message['type'] == 'websocket.disconnect':
                    break
                data, text = message.get('bytes'), message.get('text')
                if data is not None:
                    arrived, frame_number = time.perf_counter(), number
                    number += 1
                    try:
                        frame = await self._decode_message(data)
                    except FrameError as err:
                        self.metrics.malformed += 1
                        self.scheduler.post(stream, {'type': 'error', 'frame': frame_number,
                                                     'error': str(err)})
                        continue
                    self.scheduler.submit(stream, frame_number, frame, arrived)
                elif text is not None:
                    try:
                        parse_control(text)
                    except FrameError as err:
                        self.metrics.malformed += 1
                        self.scheduler.post(stream, {'type': 'error', 'frame': None,
                                                     'error': str(err)})
                        continue
                    self.scheduler.reset(stream)
                    self.scheduler.post(stream, {'type': 'reset', 'next_frame': number})
        except WebSocketDisconnect:
            pass
        finally:
            self.scheduler.close(stream)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender


def _save(upload: UploadFile, path: Path) -> None:
    upload.file.seek(0)
    with path.open('xb') as out:
        shutil.copyfileobj(upload.file, out)


async def _send(websocket: WebSocket, stream: Stream) -> None:
    """Send the stream's outbox until the connection ends (this task alone waits on it)."""
    while True:
        message = await stream.outbox.get()
        await websocket.send_json(message)


def create_app(predictor: Classifier, config: ServeConfig | None = None,
               step: StepFunction | None = None) -> Starlette:
    """The ASGI app of ``tsmnet serve``.

    Args:
        predictor: The predictor whose model classifies uploads and streams (its batch norms
            folded and weights laid out as :class:`~tsmnet.predictor.Predictor` does).
        config: Limits. Defaults to :class:`ServeConfig`'s.
        step: The streams' step under another runtime (:class:`OnlineModel`'s ``step``).
            Defaults to None: the model's, eager.

    Raises:
        TypeError, ValueError: The model cannot stream (named by :class:`tsmnet.TSMStream`).
    """
    server = Server(predictor, config or ServeConfig(), step)
    app = Starlette(routes=server.routes(), lifespan=server.lifespan)
    app.state.server = server
    return app
