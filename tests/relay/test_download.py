"""Artifact downloads: ranges (single, multiple, bad), validators, .MD5SUM, the redirect option."""

from __future__ import annotations

import hashlib
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import BodyPartReader, MultipartReader

from relay.server.ranges import parse_range
from tests.relay.conftest import IMAGE_110, AiohttpClient, Server, make_settings, start_server

DATA = IMAGE_110.read_bytes()
SIZE = len(DATA)


async def _download_path(server: Server, controller_id: str = "dev-1") -> str:
    await server.add_device(controller_id)
    release = await server.upload(IMAGE_110, filename="app.bin")
    await server.api("POST", "/actions", 201, json={"controller_id": controller_id, "release": "1.1.0"})
    return server.ddi(controller_id, f"/softwaremodules/{release['id']}/artifacts/app.bin")


async def _get(server: Server, path: str, **headers: str) -> Any:
    return await server.client.get(path, headers={**server.target("dev-1"), **headers})


async def test_whole_file_with_validators(server: Server) -> None:
    path = await _download_path(server)
    response = await _get(server, path)
    assert response.status == 200
    assert await response.read() == DATA
    assert response.headers["ETag"] == f'"{hashlib.sha1(DATA).hexdigest()}"'
    assert response.headers["Accept-Ranges"] == "bytes"
    assert parsedate_to_datetime(response.headers["Last-Modified"]) is not None
    head = await server.client.head(path, headers=server.target("dev-1"))
    assert head.status == 200 and head.headers["Content-Length"] == str(SIZE)


async def test_md5sum(server: Server) -> None:
    path = await _download_path(server)
    response = await _get(server, path + ".MD5SUM")
    assert await response.text() == f"{hashlib.md5(DATA).hexdigest()}  app.bin\n"


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, SIZE - 1),
        ("bytes=-10", SIZE - 10, SIZE - 1),
        (f"bytes=10-{SIZE + 50}", 10, SIZE - 1),
    ],
)
async def test_single_range(server: Server, header: str, first: int, last: int) -> None:
    path = await _download_path(server)
    response = await _get(server, path, Range=header)
    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
    assert await response.read() == DATA[first : last + 1]


async def test_multiple_ranges_are_multipart_byteranges(server: Server) -> None:
    path = await _download_path(server)
    response = await _get(server, path, Range="bytes=0-9,20-29,-5")
    assert response.status == 206
    assert response.headers["Content-Type"].startswith("multipart/byteranges; boundary=")
    reader = MultipartReader(response.headers, response.content)
    parts = []
    while (part := await reader.next()) is not None:
        assert isinstance(part, BodyPartReader)
        parts.append((part.headers["Content-Range"], await part.read()))
    assert parts == [
        (f"bytes 0-9/{SIZE}", DATA[0:10]),
        (f"bytes 20-29/{SIZE}", DATA[20:30]),
        (f"bytes {SIZE - 5}-{SIZE - 1}/{SIZE}", DATA[-5:]),
    ]


@pytest.mark.parametrize(
    "header",
    [
        f"bytes={SIZE}-",
        f"bytes={SIZE + 10}-{SIZE + 20}",
        "bytes=50-10",
        "bytes=x-y",
        "items=0-1",
        "bytes=",
        "bytes=-0",
        "bytes=" + ",".join(["0-1"] * 17),
    ],
)
async def test_bad_range_is_416(server: Server, header: str) -> None:
    path = await _download_path(server)
    response = await _get(server, path, Range=header)
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{SIZE}"


async def test_if_range_and_if_match(server: Server) -> None:
    path = await _download_path(server)
    etag = (await _get(server, path)).headers["ETag"]
    ranged = await _get(server, path, Range="bytes=0-3", **{"If-Range": etag})
    assert ranged.status == 206
    stale = await _get(server, path, Range="bytes=0-3", **{"If-Range": '"0000"'})
    assert stale.status == 200 and await stale.read() == DATA
    old_date = format_datetime(parsedate_to_datetime("Mon, 01 Jan 2001 00:00:00 GMT"), usegmt=True)
    assert (await _get(server, path, Range="bytes=0-3", **{"If-Range": old_date})).status == 200
    assert (await _get(server, path, **{"If-Match": '"nope"'})).status == 412
    assert (await _get(server, path, **{"If-Match": etag})).status == 200
    assert (await _get(server, path, **{"If-None-Match": etag})).status == 304


async def test_download_needs_an_assignment_and_the_right_name(server: Server) -> None:
    path = await _download_path(server)
    await server.add_device("dev-2")
    other = path.replace("/dev-1/", "/dev-2/")
    assert (await server.client.get(other, headers=server.target("dev-2"))).status == 404
    for name in ("other.bin", "..%2F..%2Fadmin-token", "app.bin.md5sum"):
        response = await _get(server, path.rsplit("/", 1)[0] + "/" + name)
        assert response.status == 404, name
    assert (await _get(server, path.replace("/softwaremodules/1/", "/softwaremodules/99/"))).status == 404


async def test_download_metrics(server: Server) -> None:
    path = await _download_path(server)
    await _get(server, path)
    await _get(server, path, Range="bytes=0-9")
    text = await (await server.client.get("/metrics")).text()
    assert f"stm32ota_artifact_bytes_total {float(SIZE + 10)}" in text
    assert 'stm32ota_artifact_downloads_total{kind="range"} 1.0' in text


async def test_redirect_to_a_download_base_url(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    server = await start_server(
        aiohttp_client, make_settings(tmp_path / "data", download_base_url="https://cdn.example.com/a/")
    )
    path = await _download_path(server)
    response = await server.client.get(path, headers=server.target("dev-1"), allow_redirects=False)
    assert response.status == 307
    assert response.headers["Location"] == f"https://cdn.example.com/a/{hashlib.sha256(DATA).hexdigest()}"


def test_parse_range_edges() -> None:
    assert parse_range("bytes=0-0", 1) == [(0, 0)]
    assert parse_range("bytes=-100", 10) == [(0, 9)]
    with pytest.raises(ValueError):
        parse_range("bytes=0-0", 0)
