"""Request input checks: JSON bodies, names in paths, typed fields.  Every failure is a 400 with a message."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from aiohttp import web

from .errors import http_error

__all__ = [
    "CONTROLLER_ID_RE",
    "bad_request",
    "check_controller_id",
    "check_name",
    "field",
    "json_body",
    "optional",
]

T = TypeVar("T")

# controllerIds, gateway names, release versions: no slash, no "..", no control characters (path traversal and
# log injection are impossible by construction).
CONTROLLER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ :+-]{0,127}$")
INT_MIN, INT_MAX = -(2**31), 2**31 - 1  # what every integer column holds, on SQLite and PostgreSQL alike
MAX_JSON_BODY = 4 * 1024 * 1024  # a bulk device list of 10,000 entries fits


def is_number(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also takes '²' and other digits ``int`` refuses), at most 18 of them."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def bad_request(message: str, slug: str = "bad-request") -> web.HTTPException:
    return http_error(web.HTTPBadRequest, slug, message)


def check_controller_id(value: str) -> str:
    if not CONTROLLER_ID_RE.match(value) or ".." in value:
        raise bad_request(
            f"invalid controllerId {value[:80]!r}: letters, digits, '.', '_', ':', '-' only", "bad-controller-id"
        )
    return value


def check_name(value: str, what: str) -> str:
    if not _NAME_RE.match(value) or ".." in value:
        raise bad_request(f"invalid {what} {value[:80]!r}", f"bad-{what.replace(' ', '-')}")
    return value


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, or a 400 (not JSON, not an object, too big)."""
    if request.content_length is not None and request.content_length > MAX_JSON_BODY:
        raise http_error(web.HTTPRequestEntityTooLarge, "too-large", "the JSON body is too large")
    raw = await request.content.read(MAX_JSON_BODY + 1)
    if len(raw) > MAX_JSON_BODY:
        raise http_error(web.HTTPRequestEntityTooLarge, "too-large", "the JSON body is too large")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise bad_request(f"the body is not valid JSON: {err}", "bad-json") from None
    except RecursionError:
        raise bad_request("the body is nested too deeply", "bad-json") from None
    if not isinstance(data, dict):
        raise bad_request("the body must be a JSON object", "bad-json")
    return data


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {
        str: "a string",
        int: "an integer",
        bool: "true or false",
        dict: "an object",
        list: "a list",
        float: "a number",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def field(data: dict[str, Any], name: str, kind: type[T], where: str = "") -> T:
    """``data[name]``, required and of type ``kind`` (booleans are not integers here)."""
    if name not in data:
        raise bad_request(f"{where}{name} is required", "missing-field")
    return _typed(data[name], name, kind, where)


def optional(data: dict[str, Any], name: str, kind: type[T], default: T, where: str = "") -> T:
    if data.get(name) is None:
        return default
    return _typed(data[name], name, kind, where)


def _typed(value: Any, name: str, kind: type[T], where: str) -> T:
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # type: ignore[return-value]
    if not ok:
        raise bad_request(f"{where}{name} must be {_type_name(kind)}, not {json.dumps(value)[:60]}", "bad-field")
    if kind is int and not INT_MIN <= value <= INT_MAX:
        raise bad_request(f"{where}{name} is out of range ({INT_MIN}..{INT_MAX})", "bad-field")
    return value  # type: ignore[no-any-return]
