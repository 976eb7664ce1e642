"""A hawkBit DDI client for many controllers behind one gateway: one :class:`aiohttp.ClientSession`.

Every request has a timeout (``ClientTimeout``: total for small requests, per-read silence for downloads).
429 and 5xx answers and network errors are retried with exponential backoff and full jitter (``Retry-After``
is honoured); other 4xx are :class:`~relay.gateway.errors.UplinkError` at once.  The poll sends the last
``ETag`` as ``If-None-Match`` (a 304 reuses the last answer), and a ``deploymentBase`` link whose ``?c=`` is
unchanged is not fetched again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
from multidict import CIMultiDict

from .errors import UplinkError

__all__ = ["DdiClient", "Deployment", "Poll", "feedback_body", "parse_sleep"]

log = logging.getLogger(__name__)
T = TypeVar("T")

BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 60.0
RETRY_ATTEMPTS = 6
_SLEEP = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)$")
DEFAULT_SLEEP_S = 300.0


def parse_sleep(text: object) -> float:
    """DDI's ``HH:MM:SS``; anything else is the default (and logged)."""
    if isinstance(text, str) and (match := _SLEEP.match(text)):
        hours, minutes, seconds = (int(g) for g in match.groups())
        return float(hours * 3600 + minutes * 60 + seconds)
    log.warning("server sent a poll interval %r that is not HH:MM:SS; using %.0f s", text, DEFAULT_SLEEP_S)
    return DEFAULT_SLEEP_S


def backoff_delay(attempt: int, *, base: float = BACKOFF_BASE_S, cap: float = BACKOFF_MAX_S) -> float:
    """Full jitter (AWS's "exponential backoff and jitter"): uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0.0, min(cap, base * (2**attempt)))


@dataclass(frozen=True)
class Poll:
    sleep: float
    links: dict[str, str]  # rel -> href
    sent_at: float = 0.0  # wall-clock time the request went out (the answer describes the server after it)

    def action_link(self, rel: str) -> tuple[str, str] | None:
        """(href, action id) of ``deploymentBase``/``cancelAction``, if present."""
        href = self.links.get(rel)
        if href is None:
            return None
        action = href.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        return href, action


@dataclass(frozen=True)
class Artifact:
    filename: str
    size: int
    hashes: dict[str, str]
    links: dict[str, str]

    @property
    def download_url(self) -> str | None:
        return self.links.get("download") or self.links.get("download-http")


@dataclass(frozen=True)
class Deployment:
    action_id: str
    download: str  # skip | attempt | forced
    update: str
    maintenance_window: str | None  # available | unavailable | None
    version: str | None
    chunks: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)

    @property
    def digest(self) -> str:
        """What this deployment delivers (version, and each artifact's name, size and hashes), hashed: an
        action id alone is not unique (gooseBit's action id is its software id, offered again and again)."""
        what = {
            "version": self.version,
            "artifacts": sorted([a.filename, a.size, sorted(a.hashes.items())] for a in self.artifacts),
        }
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:32]

    @property
    def may_install(self) -> bool:
        return self.update != "skip" and self.maintenance_window != "unavailable"

    @classmethod
    def from_json(cls, body: Any) -> Deployment:
        if not isinstance(body, dict) or not isinstance(body.get("deployment"), dict):
            raise UplinkError("deploymentBase answer has no deployment object")
        dep = body["deployment"]
        chunks = [c for c in dep.get("chunks", []) if isinstance(c, dict)]
        artifacts: list[Artifact] = []
        version = None
        for chunk in chunks:
            version = version or chunk.get("version")
            for art in chunk.get("artifacts", []):
                if not isinstance(art, dict):
                    continue
                links = {
                    rel: str(link.get("href"))
                    for rel, link in (art.get("_links") or {}).items()
                    if isinstance(link, dict) and link.get("href")
                }
                size = art.get("size")
                if not isinstance(size, int) or size < 0:
                    raise UplinkError(f"artifact {art.get('filename')!r} has no valid size")
                artifacts.append(
                    Artifact(
                        filename=str(art.get("filename", "")),
                        size=size,
                        hashes={k.lower(): str(v).lower() for k, v in (art.get("hashes") or {}).items()},
                        links=links,
                    )
                )
        return cls(
            action_id=str(body.get("id", "")),
            download=str(dep.get("download", "forced")),
            update=str(dep.get("update", "forced")),
            maintenance_window=dep.get("maintenanceWindow"),
            version=version,
            chunks=chunks,
            artifacts=artifacts,
        )


def feedback_body(
    action_id: str,
    execution: str,
    finished: str = "none",
    *,
    details: list[str] | None = None,
    progress: tuple[int, int] | None = None,
    code: int | None = None,
) -> dict[str, Any]:
    result: dict[str, Any] = {"finished": finished}
    if progress is not None:
        result["progress"] = {"cnt": progress[0], "of": progress[1]}
    status: dict[str, Any] = {"execution": execution, "result": result}
    if details:
        status["details"] = details
    if code is not None:
        status["code"] = code
    return {"id": action_id, "time": datetime.now(UTC).strftime("%Y%m%dT%H%M%S"), "status": status}


class DdiClient:
    """DDI for every controller of this gateway.  ``auth(controller_id)`` gives the Authorization value."""

    def __init__(
        self,
        server: str,
        tenant: str,
        auth: Callable[[str], str | None],
        *,
        timeout: float = 30.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.tenant = tenant
        self._auth = auth
        self.timeout = timeout
        self._session = session
        self._own_session = session is None
        self._etags: dict[str, tuple[str, Poll]] = {}
        self._deployments: dict[str, Deployment] = {}  # href (with ?c=) -> answer
        self.requests = 0
        self.retries = 0

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=min(10.0, self.timeout)),
                headers={"Accept": "application/hal+json, application/json"},
                raise_for_status=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    def base(self, controller_id: str) -> str:
        return f"{self.server}/{self.tenant}/controller/v1/{controller_id}"

    def headers(self, controller_id: str, **extra: str) -> dict[str, str]:
        headers = dict(extra)
        auth = self._auth(controller_id)
        if auth:
            headers["Authorization"] = auth
        return headers

    async def retrying(self, what: str, call: Callable[[], Awaitable[T]], attempts: int = RETRY_ATTEMPTS) -> T:
        """``call()`` again after retryable failures, with backoff and jitter; the last failure is raised."""
        for attempt in range(attempts):
            try:
                return await call()
            except UplinkError as err:
                if not err.retryable or attempt == attempts - 1:
                    raise
                delay = err.retry_after if err.retry_after is not None else backoff_delay(attempt)
                self.retries += 1
                log.info("%s: %s; retrying in %.1f s", what, err, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _json(
        self, method: str, url: str, controller_id: str, body: Any = None, *, headers: dict[str, str] | None = None
    ) -> tuple[int, Mapping[str, str], Any]:
        self.requests += 1
        sent = self.headers(controller_id, **(headers or {}))
        try:
            async with self.session.request(method, url, json=body, headers=sent) as response:
                raw = await response.read()
                status, got = response.status, CIMultiDict(response.headers)  # header names: any case
        except TimeoutError as err:
            raise UplinkError(f"{method} {url}: no answer within {self.timeout:.0f} s") from err
        except aiohttp.ClientError as err:
            raise UplinkError(
                f"{method} {url}: {err or type(err).__name__}",
                hint="is the server up and reachable from here? (--server / server =)",
            ) from err
        if status == 429 or status >= 500:
            raise UplinkError(
                f"{method} {url}: HTTP {status}", status=status, retry_after=_retry_after(got.get("Retry-After"))
            )
        parsed: Any = None
        if raw and status != 304:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
        return status, got, parsed

    @staticmethod
    def _check(status: int, what: str, body: Any) -> None:
        if status >= 400:
            message = body.get("message") if isinstance(body, dict) else None
            hint = None
            if status in (401, 403):
                hint = "check the gateway token or the device's target token (and that the device is accepted)"
            elif status in (404, 405):
                hint = "is the server URL the DDI base (scheme, host and port, no path) and the tenant right?"
            raise UplinkError(f"{what}: HTTP {status}" + (f" ({message})" if message else ""), status=status, hint=hint)

    async def poll(self, controller_id: str) -> Poll:
        url = self.base(controller_id)
        cached = self._etags.get(controller_id)
        headers = {"If-None-Match": cached[0]} if cached else {}
        sent_at = time.time()
        status, got, body = await self._json("GET", url, controller_id, headers=headers)
        if status == 304 and cached:
            return replace(cached[1], sent_at=sent_at)
        self._check(status, f"poll of {controller_id}", body)
        if not isinstance(body, dict):
            raise UplinkError(f"poll of {controller_id}: the answer is not a JSON object", status=status)
        sleep = parse_sleep(((body.get("config") or {}).get("polling") or {}).get("sleep"))
        links = {
            rel: str(link["href"])
            for rel, link in (body.get("_links") or {}).items()
            if isinstance(link, dict) and isinstance(link.get("href"), str)
        }
        poll = Poll(sleep=sleep, links=links, sent_at=sent_at)
        etag = got.get("ETag")
        if etag:
            self._etags[controller_id] = (etag, poll)
        return poll

    async def deployment(self, controller_id: str, href: str) -> Deployment:
        cached = self._deployments.get(href)
        if cached is not None and "?c=" in href:  # the hash changes whenever the action does
            return cached
        status, _, body = await self._json("GET", href, controller_id)
        self._check(status, f"deploymentBase of {controller_id}", body)
        deployment = Deployment.from_json(body)
        self._deployments[href] = deployment
        return deployment

    async def cancel_action(self, controller_id: str, href: str) -> str:
        """The action a ``cancelAction`` asks to stop (its ``stopId``)."""
        status, _, body = await self._json("GET", href, controller_id)
        self._check(status, f"cancelAction of {controller_id}", body)
        try:
            return str(body["cancelAction"]["stopId"])
        except (TypeError, KeyError) as err:
            raise UplinkError(f"cancelAction of {controller_id}: no stopId in the answer") from err

    async def put_config(self, controller_id: str, data: dict[str, str]) -> None:
        url = f"{self.base(controller_id)}/configData"
        status, _, body = await self._json("PUT", url, controller_id, {"mode": "merge", "data": data})
        self._check(status, f"configData of {controller_id}", body)

    async def post(self, controller_id: str, path: str, body: Any) -> int:
        """POST to ``{base}/{path}``; the status (2xx, or 404/410 the caller interprets)."""
        url = f"{self.base(controller_id)}/{path}"
        status, _, answer = await self._json("POST", url, controller_id, body)
        if status in (404, 405, 410):
            return status
        self._check(status, f"POST {path} of {controller_id}", answer)
        return status


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, min(float(value), BACKOFF_MAX_S))
    except ValueError:
        return None
