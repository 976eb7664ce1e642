"""Artifact downloads as hawkBit's ``FileStreamingUtil`` serves them: ranges, validators, multipart.

``ETag`` is the artifact's SHA-1 (strong, quoted); ``Last-Modified`` the release's upload time;
``Accept-Ranges: bytes``.  ``Range: bytes=a-b[,c-d...]`` gives 206 (several ranges as
``multipart/byteranges``); a malformed, inverted or unsatisfiable range gives 416 with
``Content-Range: bytes */size``.  ``If-Range`` with another validator sends the whole file; ``If-Match``
that does not match is 412; ``If-None-Match`` that matches is 304.

aiohttp's ``FileResponse`` handles one range only and its ETag is built from the file's mtime, not the
content, so the responses are built here (artifacts are firmware images: a few hundred KiB, read whole).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

from aiohttp import web

from .validate import is_number

__all__ = ["MAX_RANGES", "parse_range", "serve_bytes"]

MAX_RANGES = 16
"""More ranges than this in one request is refused (416): a defence against range amplification."""


class _BadRange(ValueError):
    pass


def parse_range(header: str, size: int) -> list[tuple[int, int]]:
    """The inclusive ``(first, last)`` byte ranges ``header`` asks of a ``size``-byte file.

    Raises :class:`ValueError` for a malformed, inverted or unsatisfiable range.
    """
    unit, sep, specs = header.partition("=")
    if unit.strip().lower() != "bytes" or not sep:
        raise _BadRange("only byte ranges are supported")
    ranges: list[tuple[int, int]] = []
    for spec in specs.split(","):
        first_text, dash, last_text = spec.strip().partition("-")
        first_text, last_text = first_text.strip(), last_text.strip()
        if not dash or not (is_number(first_text) or first_text == "") or not (is_number(last_text) or last_text == ""):
            raise _BadRange(f"malformed range {spec.strip()!r}")
        if first_text == "":
            if last_text == "" or int(last_text) == 0:
                raise _BadRange(f"malformed range {spec.strip()!r}")
            first, last = max(size - int(last_text), 0), size - 1
        else:
            first = int(first_text)
            last = int(last_text) if last_text else size - 1
            if last < first:
                raise _BadRange(f"inverted range {spec.strip()!r}")
            last = min(last, size - 1)
        if first >= size:
            raise _BadRange(f"range {spec.strip()!r} starts beyond the end ({size} bytes)")
        ranges.append((first, last))
    if not ranges or len(ranges) > MAX_RANGES:
        raise _BadRange("too many ranges")
    return ranges


def _etag_matches(header: str, etag: str) -> bool:
    return any(tag.strip() in (etag, "*", "W/" + etag) for tag in header.split(","))


def _if_range_allows(header: str, etag: str, modified: dt.datetime) -> bool:
    header = header.strip()
    if header.startswith('"'):
        return header == etag
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return False
    return when is not None and modified.replace(microsecond=0) <= when


def _read(path: Path) -> bytes:
    return path.read_bytes()


async def serve_bytes(
    request: web.Request, path: Path, *, size: int, sha1: str, modified: dt.datetime, filename: str
) -> tuple[web.Response, int]:
    """The response for a download of ``path``, and how many body bytes it carries."""
    etag = f'"{sha1}"'
    modified = modified if modified.tzinfo else modified.replace(tzinfo=dt.UTC)
    headers = {
        "ETag": etag,
        "Last-Modified": format_datetime(modified.astimezone(dt.UTC), usegmt=True),
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'attachment; filename="{filename}"',
    }
    if_match = request.headers.get("If-Match")
    if if_match is not None and not _etag_matches(if_match, etag):
        return web.Response(status=412, headers=headers), 0
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None and _etag_matches(if_none_match, etag):
        return web.Response(status=304, headers=headers), 0
    range_header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if range_header is not None and if_range is not None and not _if_range_allows(if_range, etag, modified):
        range_header = None
    if range_header is not None:
        try:
            ranges = parse_range(range_header, size)
        except ValueError as err:
            headers["Content-Range"] = f"bytes */{size}"
            return web.Response(status=416, text=str(err), headers=headers), 0
    data = await asyncio.get_running_loop().run_in_executor(None, _read, path)
    if len(data) != size:
        raise web.HTTPInternalServerError(text="artifact store is inconsistent")
    if range_header is None:
        return web.Response(body=data, content_type="application/octet-stream", headers=headers), size
    if len(ranges) == 1:
        first, last = ranges[0]
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        body = data[first : last + 1]
        return web.Response(status=206, body=body, content_type="application/octet-stream", headers=headers), len(body)
    boundary = secrets.token_hex(16)
    parts: list[bytes] = []
    sent = 0
    for first, last in ranges:
        parts.append(
            f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Range: bytes {first}-{last}/{size}\r\n\r\n".encode()
        )
        parts.append(data[first : last + 1])
        parts.append(b"\r\n")
        sent += last + 1 - first
    parts.append(f"--{boundary}--\r\n".encode())
    headers["Content-Type"] = f"multipart/byteranges; boundary={boundary}"
    return web.Response(status=206, body=b"".join(parts), headers=headers), sent
