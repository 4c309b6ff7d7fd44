"""``tsmnet serve``: online TSM over HTTP and WebSocket (the ``serve`` extra: Starlette,
uvicorn).

Many streams, each with its own shift state, stepped together in dynamic batches
(:mod:`.scheduler`), uploads classified as ``tsmnet predict`` does, a camera page, and
Prometheus metrics. See docs/serve.md.
"""

from .app import Classifier, ServeConfig, create_app
from .frames import FrameError, decode_frame, raw_frame
from .online import OnlineModel
from .scheduler import BatchScheduler, StreamLimitError
from .server import BackgroundServer, run

__all__ = ['BackgroundServer', 'BatchScheduler', 'Classifier', 'FrameError', 'OnlineModel',
           'ServeConfig', 'StreamLimitError', 'create_app', 'decode_frame', 'raw_frame', 'run']
