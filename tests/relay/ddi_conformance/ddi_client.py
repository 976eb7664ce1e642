"""A deliberately plain DDI client for the conformance suite: one blocking request per call, nothing cached.

It is not the gateway's client: the suite must see exactly what the server sends (status, every header, raw
bytes), so nothing here retries, follows a link on its own or decodes more than asked.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

TIMEOUT_S = 30.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def media_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()


def call(
    method: str,
    url: str,
    *,
    token: str | None = None,
    json_body: Any = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request; ``token`` goes out as ``Authorization: TargetToken <token>``.  Errors are returned, not raised."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"TargetToken {token}"
    if json_body is not None:
        data = json.dumps(json_body).encode()
        sent.setdefault("Content-Type", "application/json")
    sent.setdefault("Accept", "application/json")
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with _OPENER.open(request, timeout=TIMEOUT_S) as reply:
            return Reply(reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


def byteranges(reply: Reply) -> list[tuple[str, bytes]]:
    """The parts of a ``multipart/byteranges`` body as (Content-Range, bytes), in order (RFC 9110 14.6)."""
    content_type = reply.header("content-type") or ""
    boundary = None
    for parameter in content_type.split(";")[1:]:
        key, _, value = parameter.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip('"').encode()
    if boundary is None:
        raise AssertionError(f"multipart reply without a boundary: {content_type!r}")
    parts = []
    for chunk in reply.body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, separator, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not separator:
            raise AssertionError(f"multipart part without a header block: {chunk[:80]!r}")
        fields = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        parts.append((fields.get("content-range", ""), data.removesuffix(b"\r\n")))
    return parts
