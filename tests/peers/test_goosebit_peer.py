"""The gooseBit peer itself: the fixture starts it, a bundle from build_swu is accepted, and a device goes the
whole DDI way to "Finished" on the new version, as the gateway's gooseBit test will drive it."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.peers.fixtures import goosebit  # noqa: F401  (the fixture under test)
from tests.peers.goosebit import MAX_TOKEN_LENGTH, GooseBit, GooseBitError, Response
from tests.peers.swu import NEWC_MAGIC, TRAILER, build_swu, cpio_newc

CID = "stm32-0123456789abcdef01234567"
BOARD = {"hw_boardname": "stm32-gw", "hw_revision": "1.0"}


def _members(archive: bytes) -> list[tuple[str, bytes]]:
    """Read a newc archive back (the reader a gateway needs, in its simplest form)."""
    members, offset = [], 0
    while True:
        header = archive[offset : offset + 110]
        assert header[:6] == NEWC_MAGIC, header
        size, name_size = int(header[54:62], 16), int(header[94:102], 16)
        name_start = offset + 110
        name = archive[name_start : name_start + name_size - 1].decode()
        data_start = name_start + name_size + (-(110 + name_size) % 4)
        if name == TRAILER:
            return members
        members.append((name, archive[data_start : data_start + size]))
        offset = data_start + size + (-size % 4)


def test_cpio_newc_round_trip() -> None:
    members = {"sw-description": b'software = { version = "1"; };', "a.bin": b"\x00\x01\x02", "odd": b"12345"}
    archive = cpio_newc(members)
    assert len(archive) % 4 == 0
    assert _members(archive) == list(members.items())


def test_build_swu_puts_sw_description_first_with_each_images_sha256() -> None:
    image = bytes(range(256)) * 4
    members = _members(build_swu("1.1.0", {"demo.bin": image}, board="stm32-gw", revision="1.0"))
    assert [name for name, _ in members] == ["sw-description", "demo.bin"]
    description = members[0][1].decode()
    assert 'version = "1.1.0";' in description
    assert "stm32-gw = {" in description and 'hardware-compatibility = [ "1.0" ];' in description
    assert hashlib.sha256(image).hexdigest() in description
    assert members[1][1] == image


def _ddi(server: GooseBit, method: str, path: str, token: str, body: object = None, **headers: str) -> Response:
    sent = {"Authorization": f"TargetToken {token}", **headers}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    return server.request(method, f"/{server.tenant}/controller/v1/{CID}{path}", body=data, headers=sent)


def test_a_device_is_updated_through_goosebit(goosebit: GooseBit) -> None:  # noqa: F811
    token = goosebit.add_device(CID)
    assert _ddi(goosebit, "GET", "", "wrong-token").status == 401
    poll = _ddi(goosebit, "GET", "", token).json()
    assert set(poll["_links"]) == {"configData"}
    config = {"mode": "merge", "data": {**BOARD, "sw_version": "1.0.0"}}
    assert _ddi(goosebit, "PUT", "/configData", token, config).status == 200

    image = b"\x3d\xb8\xf3\x96" + bytes(5000)
    bundle = build_swu("1.1.0", {"demo-1.1.0.signed.bin": image})
    software = goosebit.upload_software(bundle, "demo-1.1.0.swu")
    goosebit.assign(CID, software)

    href = _ddi(goosebit, "GET", "", token).json()["_links"]["deploymentBase"]["href"]
    action = href.rsplit("/", 1)[1]
    deployment = _ddi(goosebit, "GET", f"/deploymentBase/{action}", token).json()
    artifact = deployment["deployment"]["chunks"][0]["artifacts"][0]
    assert artifact["size"] == len(bundle)
    assert artifact["hashes"]["sha1"] == hashlib.sha1(bundle).hexdigest()

    head = _ddi(goosebit, "GET", "/download", token, Range="bytes=0-1023")
    rest = _ddi(goosebit, "GET", "/download", token, Range="bytes=1024-")
    assert (head.status, rest.status) == (206, 206)
    assert head.body + rest.body == bundle

    progress = {"status": {"execution": "proceeding", "result": {"finished": "none", "progress": {"cnt": 1, "of": 2}},
                           "details": ["Downloaded 100%"]}}  # fmt: skip
    closed = {"status": {"execution": "closed", "result": {"finished": "success"}, "details": ["confirmed 1.1.0"]}}
    assert _ddi(goosebit, "POST", f"/deploymentBase/{action}/feedback", token, progress).status == 200
    assert goosebit.device(CID)["last_state"] == "Running"
    assert _ddi(goosebit, "POST", f"/deploymentBase/{action}/feedback", token, closed).status == 200

    shown = goosebit.device(CID)
    assert (shown["last_state"], shown["sw_version"], shown["progress"]) == ("Finished", "1.1.0", 100)
    assert "deploymentBase" not in _ddi(goosebit, "GET", "", token).json()["_links"]


def test_a_token_longer_than_goosebit_keeps_is_refused_before_the_call(goosebit: GooseBit) -> None:  # noqa: F811
    with pytest.raises(GooseBitError, match=str(MAX_TOKEN_LENGTH)):
        goosebit.add_device(CID, "x" * (MAX_TOKEN_LENGTH + 1))
