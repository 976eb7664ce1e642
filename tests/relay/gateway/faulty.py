"""A fault-injecting HTTP proxy in front of a real DDI server (gooseBit, or ours): the server is real, only the
wire between it and the gateway misbehaves — a download cut mid-body, 500s, 429s, a request that hangs, an
artifact with a flipped byte, the uplink down.  Every request it saw is recorded, so a test can tell a
resumed download (a ``Range`` request) from a restarted one, and count the feedback that got through."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

_FORWARD = ("Authorization", "Range", "If-Range", "If-None-Match", "If-Match", "Content-Type", "Accept")
SHUTDOWN_S = 10.0  # a handler still running when the proxy closes gets this long (aiohttp: 60 s)


@dataclass
class Seen:
    method: str
    path: str
    range: str | None
    status: int
    body: bytes = b""


@dataclass
class Faults:
    cut_download_at: int | None = None  # the next download stops after this many bytes (connection dropped)
    statuses: list[int] = field(default_factory=list)  # the next non-download requests answer these
    hang_s: float = 0.0  # the next non-download request hangs this long first (once)
    tamper: bool = False  # downloads have one byte flipped
    down: bool = False  # every request is refused with 503 (the uplink is away)
    down_for_feedback: bool = False  # only POSTs are refused (results are produced while the uplink is away)


class FaultyProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults = Faults()
        self.seen: list[Seen] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> FaultyProxy:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_S)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession(auto_decompress=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        # the server first: a request the gateway left in flight as it stopped (its configData after the
        # update) is still being forwarded, and closing the upstream session under it left that handler
        # waiting until the runner's shutdown_timeout (60 s by default) cancelled it
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def posts(self, suffix: str = "/feedback") -> list[Seen]:
        return [s for s in self.seen if s.method == "POST" and s.path.endswith(suffix) and s.status < 300]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        faults = self.faults
        body = await request.read()
        download = request.path.endswith("/download") or "/artifacts/" in request.path
        seen = Seen(request.method, request.path, request.headers.get("Range"), 0, body)
        self.seen.append(seen)
        if faults.down or (faults.down_for_feedback and request.method == "POST"):
            seen.status = 503
            return web.Response(status=503, text="uplink down (test)")
        if not download and faults.statuses:
            seen.status = faults.statuses.pop(0)
            return web.Response(status=seen.status, headers={"Retry-After": "0"} if seen.status == 429 else {})
        if not download and faults.hang_s:
            hang, faults.hang_s = faults.hang_s, 0.0
            await asyncio.sleep(hang)
        headers = {k: request.headers[k] for k in _FORWARD if k in request.headers}
        headers["Host"] = request.host
        assert self._session is not None
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=body or None, headers=headers
        ) as upstream:
            seen.status = upstream.status
            data = await upstream.read()
            out_headers = {
                k: v
                for k, v in upstream.headers.items()
                if k.lower()
                in ("content-type", "etag", "last-modified", "accept-ranges", "content-range", "retry-after")
            }
        if download and faults.tamper and data:
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0x40]) + data[middle + 1 :]
        if download and faults.cut_download_at is not None and len(data) > faults.cut_download_at:
            cut, faults.cut_download_at = faults.cut_download_at, None
            response = web.StreamResponse(status=upstream.status, headers=out_headers)
            response.content_length = len(data)
            await response.prepare(request)
            await response.write(data[:cut])
            await asyncio.sleep(0.2)  # the bytes reach the gateway, then the line dies (as a real cut does)
            with contextlib.suppress(Exception):
                assert request.transport is not None
                request.transport.close()  # the connection dies mid-body
            return response
        return web.Response(status=upstream.status, body=data, headers=out_headers)


__all__ = ["Faults", "FaultyProxy", "Seen"]
