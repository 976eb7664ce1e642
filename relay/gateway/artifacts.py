"""The artifact cache: each artifact downloaded once per digest, shared by every port, resumed after a cut.

A download goes to ``<cache>/<key>.part`` (``key`` is the strongest hash the server gave); after a cut it
continues with ``Range: bytes=N-`` and ``If-Range: <ETag or Last-Modified>`` (a server whose file changed
answers 200 and the download starts over).  Only a file whose size and *every* hash the server gave match is
renamed to ``<cache>/<key>``.  Then :func:`firmware_of` takes the MCU image out of a ``.swu`` bundle (or takes
an MCUboot image as is).  File writes and hashing run in a thread (a reason: a 1 MiB write may stall on an SD
card), never on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from .ddi import Artifact, DdiClient, backoff_delay
from .errors import ArtifactError, UplinkError
from .swu import BundleImage, is_swu, mcu_image

__all__ = ["ArtifactCache", "firmware_of"]

log = logging.getLogger(__name__)

DOWNLOAD_ATTEMPTS = 8
_HASHES = ("sha256", "sha1", "md5")  # strongest first: the cache key


def _key(artifact: Artifact) -> str:
    for name in _HASHES:
        value = artifact.hashes.get(name)
        if value and all(c in "0123456789abcdef" for c in value):
            return f"{name}-{value}"
    raise ArtifactError(f"the server gives artifact {artifact.filename!r} no hash to check it by")


def _verify(path: Path, artifact: Artifact) -> bytes:
    data = path.read_bytes()
    if len(data) != artifact.size:
        raise ArtifactError(f"{artifact.filename}: {len(data)} bytes downloaded, the server said {artifact.size}")
    for name, expected in artifact.hashes.items():
        if name not in hashlib.algorithms_available:
            continue
        got = hashlib.new(name, data).hexdigest()
        if got != expected:
            raise ArtifactError(f"{artifact.filename}: {name} is {got}, the server said {expected} (tampered?)")
    return data


def firmware_of(data: bytes, filename: str, *, member: str | None = None) -> BundleImage:
    """The MCU image an artifact carries: the one inside a ``.swu`` bundle, or the artifact itself."""
    if is_swu(data):
        return mcu_image(data, name=member)
    return BundleImage(name=Path(filename).name or "firmware.bin", data=data, version=None)


class ArtifactCache:
    def __init__(self, folder: Path, client: DdiClient) -> None:
        self.folder = folder
        self.client = client
        self._locks: dict[str, asyncio.Lock] = {}
        self.downloaded_bytes = 0
        self.resumes = 0

    async def fetch(
        self, controller_id: str, artifact: Artifact, *, on_progress: Callable[[int, int], None] | None = None
    ) -> bytes:
        """The artifact's verified bytes; downloaded at most once however many ports ask at the same time."""
        key = _key(artifact)
        if artifact.download_url is None:
            raise ArtifactError(f"artifact {artifact.filename!r} has no download link")
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            done = self.folder / key
            if await asyncio.to_thread(done.is_file):
                try:
                    return await asyncio.to_thread(_verify, done, artifact)
                except ArtifactError:
                    await asyncio.to_thread(done.unlink)
            await asyncio.to_thread(self.folder.mkdir, parents=True, exist_ok=True)
            part = self.folder / f"{key}.part"
            await self._download(controller_id, artifact, part, on_progress)
            try:
                data = await asyncio.to_thread(_verify, part, artifact)
            except ArtifactError:
                await asyncio.to_thread(_remove, part)
                raise
            await asyncio.to_thread(os.replace, part, done)
            return data

    async def _download(
        self,
        controller_id: str,
        artifact: Artifact,
        part: Path,
        on_progress: Callable[[int, int], None] | None,
    ) -> None:
        url = artifact.download_url
        assert url is not None
        meta_path = part.with_suffix(".meta")
        last_error: Exception | None = None
        for attempt in range(DOWNLOAD_ATTEMPTS):
            have = await asyncio.to_thread(_size, part)
            meta = await asyncio.to_thread(_read_meta, meta_path)
            if have >= artifact.size > 0:
                return
            headers: dict[str, str] = {}
            validator = meta.get("etag") or meta.get("last_modified")
            if have and validator:
                headers["Range"] = f"bytes={have}-"
                headers["If-Range"] = validator
            elif have:
                log.info("%s: %d bytes kept, but no ETag or Last-Modified to resume against", artifact.filename, have)
                have = 0  # nothing to tell the server which file the bytes came from: start over
            try:
                await self._get(controller_id, url, headers, part, have, artifact, meta_path, on_progress)
                return
            except (UplinkError, aiohttp.ClientError, TimeoutError, ConnectionError) as err:
                if isinstance(err, UplinkError) and not err.retryable:
                    raise
                last_error = err
                self.resumes += 1
                delay = getattr(err, "retry_after", None) or backoff_delay(attempt, cap=10.0)
                log.info(
                    "download of %s cut at attempt %d (%s); resuming in %.1f s",
                    artifact.filename,
                    attempt + 1,
                    err or type(err).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
        raise UplinkError(f"download of {artifact.filename} failed {DOWNLOAD_ATTEMPTS} times: {last_error}")

    async def _get(  # noqa: PLR0917  (one download attempt's whole context)
        self,
        controller_id: str,
        url: str,
        headers: dict[str, str],
        part: Path,
        have: int,
        artifact: Artifact,
        meta_path: Path,
        on_progress: Callable[[int, int], None] | None,
    ) -> None:
        client = self.client
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=client.timeout, sock_read=client.timeout)
        client.requests += 1
        async with client.session.get(url, headers=client.headers(controller_id, **headers), timeout=timeout) as r:
            if r.status == 429 or r.status >= 500:
                raise UplinkError(f"download: HTTP {r.status}", status=r.status)
            if r.status == 416 and have:
                await asyncio.to_thread(_remove, part)  # our partial file is longer than theirs: start over
                raise UplinkError("download: range not satisfiable; starting over")
            if r.status not in (200, 206):
                raise UplinkError(f"download of {artifact.filename}: HTTP {r.status}", status=r.status)
            append = r.status == 206
            if append and not (r.headers.get("Content-Range", "").startswith(f"bytes {have}-")):
                raise ArtifactError(f"download: the server sent {r.headers.get('Content-Range')!r} for bytes {have}-")
            meta = {"etag": r.headers.get("ETag"), "last_modified": r.headers.get("Last-Modified")}
            await asyncio.to_thread(meta_path.write_text, json.dumps(meta))
            with await asyncio.to_thread(open, part, "ab" if append else "wb") as out:
                written = have if append else 0
                async for chunk in r.content.iter_any():  # what arrived, so a cut keeps it
                    if written + len(chunk) > artifact.size:
                        raise ArtifactError(f"{artifact.filename}: the server sends more than {artifact.size} bytes")
                    await asyncio.to_thread(_write, out, chunk)
                    written += len(chunk)
                    self.downloaded_bytes += len(chunk)
                    if on_progress:
                        on_progress(written, artifact.size)
            if written < artifact.size:
                raise UplinkError(f"download cut at {written} of {artifact.size} bytes")


def _write(out: Any, chunk: bytes) -> None:
    out.write(chunk)
    out.flush()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_suffix(".meta").unlink(missing_ok=True)


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
