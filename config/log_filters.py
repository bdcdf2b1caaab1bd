"""Logging filters named in ``settings.LOGGING``."""
from __future__ import annotations

import logging


class RefusalWithoutTraceback(logging.Filter):
    """Keep the one line Django logs for a refused request (``Forbidden (Permission denied): /path``,
    any 4xx) and drop the traceback of the ``PermissionDenied``/``Http404`` behind it: a refusal is
    an expected answer, not a fault, and a traceback per refused page view buries real errors.
    Server errors (5xx) keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if record.exc_info and isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
