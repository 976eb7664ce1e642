"""Release uploads: what the server reads from a signed image, and every image it must refuse (storing nothing)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

import pytest

from tests.relay.conftest import BAD, FIRMWARE, IMAGE_100, IMAGE_110, AiohttpClient, Server, make_settings, start_server


def _stored(server: Server) -> list[Path]:
    return [p for p in server.settings.artifacts_dir.rglob("*") if p.is_file()]


async def test_upload_reads_the_image(server: Server) -> None:
    data = IMAGE_110.read_bytes()
    release = await server.upload(IMAGE_110, name="demo", filename="demo.bin", description="blue blink")
    assert release["version"] == "1.1.0"
    assert release["size"] == len(data)
    assert release["sha256"] == hashlib.sha256(data).hexdigest()
    assert release["chip_id"] == 0x413 and release["board_id"] == 0
    assert release["security_counter"] == 2
    assert release["signature_type"] == "ED25519"
    assert release["key_hash"] == "ca4f13e143202e7622c8f747fe8927e11c695ea7ba8b976744dcf0a9fcaa201c"
    (path,) = _stored(server)
    assert path.name == release["sha256"] and path.read_bytes() == data
    assert await server.api("GET", "/releases/1.1.0") == release
    assert await server.api("GET", f"/releases/{release['id']}") == release
    image = await server.client.get("/api/v1/releases/1.1.0/image", headers=server.admin)
    assert await image.read() == data


async def test_ecdsa_signed_image_is_accepted(server: Server) -> None:
    release = await server.upload(FIRMWARE / "demo-1.0.0-ecdsa.signed.bin")
    assert release["signature_type"].startswith("ECDSA")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("unsigned.bin", "missing-tlv"),
        ("tampered.bin", "digest-mismatch"),
        ("wrong-key.bin", "unknown-key"),
        ("bad-signature.bin", "bad-signature"),
        ("truncated.bin", "truncated"),
        ("bad-magic.bin", "bad-magic"),
        ("tlv-overrun.bin", "tlv-overrun"),
        ("huge-size.bin", "too-large"),
        ("no-hw-tag.bin", "missing-tlv"),
        ("wrong-key-type.bin", "wrong-key-type"),
        ("unprotected-tlv.bin", "bad-tlv"),
    ],
)
async def test_bad_images_are_refused(server: Server, name: str, reason: str) -> None:
    error = await server.upload(BAD / name, expect=422)
    assert error["error"] == reason
    assert error["message"]
    assert _stored(server) == []
    assert await server.api("GET", "/releases") == []


async def test_untrusted_when_no_key_is_configured(
    aiohttp_client: AiohttpClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="relay.server.app"):
        server = await start_server(aiohttp_client, make_settings(tmp_path / "data", trusted_keys=()))
    assert "every release upload will be refused" in caplog.text  # said at start-up, not only at the first upload
    error = await server.upload(IMAGE_110, expect=422)
    assert error["error"] == "unknown-key" and "--trusted-key" in error["message"]


async def test_duplicate_version_is_409(server: Server) -> None:
    await server.upload(IMAGE_110)
    error = await server.upload(IMAGE_110, expect=409)
    assert error["error"] == "duplicate-version"
    assert len(await server.api("GET", "/releases")) == 1


async def test_oversized_upload_is_413_and_stores_nothing(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    server = await start_server(aiohttp_client, make_settings(tmp_path / "data", max_release_size=1000))
    error = await server.upload(IMAGE_110, expect=413)
    assert "1000" in error["message"]

    async def chunks() -> object:  # no Content-Length: the limit is enforced while reading
        data = IMAGE_110.read_bytes()
        for i in range(0, len(data), 256):
            yield data[i : i + 256]

    response = await server.client.post("/api/v1/releases", data=chunks(), headers=server.admin)
    assert response.status == 413
    assert _stored(server) == []


async def test_empty_upload_is_400(server: Server) -> None:
    response = await server.client.post("/api/v1/releases", data=b"", headers=server.admin)
    assert response.status == 400


async def test_bad_filename_is_400(server: Server) -> None:
    for filename in ("../x.bin", "a/b", ".hidden", "x.bin.MD5SUM"):
        await server.upload(IMAGE_110, expect=400, filename=filename)
    assert _stored(server) == []


async def test_upload_cut_mid_way_stores_nothing(server: Server) -> None:
    data = IMAGE_110.read_bytes()
    host, port = server.client.host, server.client.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        (
            f"POST /api/v1/releases HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {server.admin_token}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n"
        ).encode()
        + data[: len(data) // 2]
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    reader.feed_eof()
    await asyncio.sleep(0.2)
    assert _stored(server) == []
    assert await server.api("GET", "/releases") == []


async def test_retire(server: Server) -> None:
    await server.upload(IMAGE_100)
    await server.add_device("dev-1")
    created = await server.api("POST", "/actions", 201, json={"controller_id": "dev-1", "release": "1.0.0"})
    retired = await server.api("POST", "/releases/1.0.0/retire")
    assert retired["retired"] is True
    # The action that had not started is canceled; the release is never assigned again.
    (action,) = (await server.api("GET", "/devices/dev-1"))["actions"]
    assert action["id"] == created["id"] and action["status"] == "canceling"
    await server.feedback("dev-1", action["id"], "closed", "success", kind="cancelAction")
    await server.api("POST", "/actions", 409, json={"controller_id": "dev-1", "release": "1.0.0"})
    await server.api("POST", "/rollouts", 409, json={"release": "1.0.0"})
    await server.api("GET", "/releases/9.9.9", 404)


async def test_wrong_hardware_is_never_assigned(server: Server) -> None:
    await server.upload(IMAGE_110)
    await server.add_device("f103", chip="0x410")
    await server.add_device("unknown", chip=None)
    error = await server.api("POST", "/actions", 409, json={"controller_id": "f103", "release": "1.1.0"})
    assert error["error"] == "wrong-chip"
    error = await server.api("POST", "/actions", 409, json={"controller_id": "unknown", "release": "1.1.0"})
    assert error["error"] == "unknown-chip"


async def test_multipart_upload(server: Server) -> None:
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("file", IMAGE_110.read_bytes(), filename="app-1.1.0.bin", content_type="application/octet-stream")
    response = await server.client.post("/api/v1/releases", data=form, headers=server.admin)
    assert response.status == 201, await response.text()
    assert (await response.json())["filename"] == "app-1.1.0.bin"
    other = aiohttp.FormData()
    other.add_field("image", b"x", filename="x.bin")
    response = await server.client.post("/api/v1/releases", data=other, headers=server.admin)
    assert response.status == 400 and "file" in (await response.json())["message"]
    traversal = aiohttp.FormData()
    traversal.add_field("file", IMAGE_100.read_bytes(), filename="../../etc/.passwd")
    response = await server.client.post("/api/v1/releases", data=traversal, headers=server.admin)
    assert response.status == 400
    garbage = await server.client.post(
        "/api/v1/releases",
        data=b"--x\r\nnonsense",
        headers={**server.admin, "Content-Type": "multipart/form-data; boundary=x"},
    )
    assert 400 <= garbage.status < 500


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_a_sha512_signed_image_keeps_its_long_key_hash(
    aiohttp_client: AiohttpClient, tmp_path: Path, engine: str
) -> None:
    """An Ed25519 image signed with SHA-512 carries a 128-hex-digit key hash (the first schema held 64)."""
    import contextlib

    from cryptography.hazmat.primitives import serialization

    from protocol.image import HardwareTag, generate_key, public_key, sign_image
    from tests.relay.conftest import TRUSTED, pg_database

    key = generate_key("ed25519")
    pub = tmp_path / "sha512.pub.pem"
    pub.write_bytes(
        public_key(key).public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    image = tmp_path / "sha512.bin"
    image.write_bytes(
        sign_image(
            bytes(range(256)) * 8, key, version="2.0.0", hw_tag=HardwareTag(chip_id=0x413), sha="512", pad_header=True
        )
    )
    async with contextlib.AsyncExitStack() as stack:
        database = None if engine == "sqlite" else await stack.enter_async_context(pg_database())
        settings = make_settings(tmp_path / "data", database=database, trusted_keys=(*TRUSTED, pub))
        server = await start_server(aiohttp_client, settings)
        release = await server.upload(image)
        assert len(release["key_hash"]) == 128
        assert await server.api("GET", "/releases/2.0.0") == release
        await server.client.close()
