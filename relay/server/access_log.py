"""Structured access logs: one JSON object per request on the ``relay.server.access`` logger."""

from __future__ import annotations

import json
import logging

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

__all__ = ["JsonAccessLogger"]


class JsonAccessLogger(AbstractAccessLogger):
    """``{"remote", "method", "path", "status", "bytes", "ms", "agent"}``; tokens never appear (no headers)."""

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logging.getLogger("relay.server.access"), log_format)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        record = {
            "remote": request.remote,
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "bytes": response.body_length,
            "ms": round(time * 1000, 2),
            "agent": request.headers.get("User-Agent", ""),
        }
        self.logger.info(json.dumps(record, separators=(",", ":")))
