"""Server errors: typed exceptions for the library side, JSON HTTP errors for the handlers.

Every HTTP error body is ``{"error": <slug>, "message": <sentence>}``; a handler never lets a bad input reach
a 500.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from protocol.errors import Stm32OtaError

__all__ = ["ConfigError", "ServerError", "http_error"]


class ServerError(Stm32OtaError):
    """The OTA server or its admin client failed (bad config, unreachable server, refused request)."""


class ConfigError(ServerError, ValueError):
    """The server's configuration (TOML file or flags) is invalid."""


class _PayloadTooLarge(web.HTTPClientError):
    """413 without aiohttp's required size arguments (our body says what the limit is)."""

    status_code = 413


def http_error(
    cls: type[web.HTTPException], slug: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> web.HTTPException:
    """An aiohttp HTTP exception with our JSON error body."""
    if cls is web.HTTPRequestEntityTooLarge:
        cls = _PayloadTooLarge
    body = json.dumps({"error": slug, "message": message, **extra})
    return cls(text=body, content_type="application/json", headers=headers)
