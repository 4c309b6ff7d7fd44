"""MMEngine's per-parameter initialisation report, moved to DEBUG.

Without a log file, MMEngine's ``BaseModule.init_weights`` logs how each parameter was
initialised at INFO: 636 lines for a ResNet-50, on the console of anyone who builds a model
from scratch. Inside :func:`init_info_at_debug` those lines are DEBUG records of the same
logger: shown where MMEngine's logger is set to DEBUG, silent otherwise. With a log file
(under a Runner), MMEngine writes the report to the file itself, as before.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from mmengine.logging import MMLogger

__all__ = ['init_info_at_debug']


class _InfoAsDebug(logging.Filter):
    """Turns the logger's INFO records into DEBUG ones (dropped unless DEBUG is enabled)."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self.logger = logger

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return self.logger.isEnabledFor(logging.DEBUG)


@contextlib.contextmanager
def init_info_at_debug() -> Iterator[None]:
    """While the body runs, INFO records of MMEngine's current logger are DEBUG records."""
    logger = MMLogger.get_current_instance()
    at_debug = _InfoAsDebug(logger)
    logger.addFilter(at_debug)
    try:
        yield
    finally:
        logger.removeFilter(at_debug)
