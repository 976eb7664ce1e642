"""The gateway's whole conversation: self-registration, acceptance, a rollout, a ranged download, feedback, logs."""

from __future__ import annotations

import hashlib

import pytest

from tests.relay.conftest import IMAGE_110, Server


def _path(href: str) -> str:
    return "/" + href.split("://", 1)[1].split("/", 1)[1]


async def test_gateway_updates_its_mcu(server: Server) -> None:
    token = (await server.api("POST", "/gateway-tokens", 201, json={"gateway": "gw-lab"}))["token"]
    gw = {"Authorization": f"GatewayToken {token}"}
    mcus = ["stm32-0123456789abcdef01234567", "stm32-89abcdef0123456789abcdef"]
    for cid in mcus:
        assert (await server.client.get(server.ddi(cid), headers=gw)).status == 200
        response = await server.client.put(
            server.ddi(cid, "/configData"),
            json={
                "mode": "merge",
                "data": {
                    "chip_id": "0x413",
                    "board_id": "1",
                    "bootloader_version": "1.0.0",
                    "running_version": "1.0.0",
                },
            },
            headers=gw,
        )
        assert response.status == 200
    pending = await server.api("GET", "/devices?state=pending")
    assert sorted(d["controller_id"] for d in pending) == mcus
    await server.api("POST", f"/devices/{mcus[0]}/accept")
    await server.api("PATCH", f"/devices/{mcus[0]}", json={"tags": ["lab"]})
    await server.upload(IMAGE_110, filename="app-1.1.0.bin")
    rollout = await server.api(
        "POST", "/rollouts", 201, json={"release": "1.1.0", "filter": {"chip": "0x413", "tags": ["lab"]}}
    )
    assert [d["controller_id"] for g in rollout["groups"] for d in g["devices"]] == [mcus[0]]
    assert "deploymentBase" not in (await (await server.client.get(server.ddi(mcus[1]), headers=gw)).json()).get(
        "_links", {}
    )

    poll = await (await server.client.get(server.ddi(mcus[0]), headers=gw)).json()
    deployment = await (await server.client.get(_path(poll["_links"]["deploymentBase"]["href"]), headers=gw)).json()
    action_id = deployment["id"]
    artifact = deployment["deployment"]["chunks"][0]["artifacts"][0]
    url = _path(artifact["_links"]["download"]["href"])
    data = IMAGE_110.read_bytes()
    received = b""
    while len(received) < artifact["size"]:  # resumable, 512 bytes at a time, as a gateway on a bad link
        response = await server.client.get(
            url,
            headers={
                **gw,
                "Range": f"bytes={len(received)}-{len(received) + 511}",
                "If-Range": f'"{artifact["hashes"]["sha1"]}"',
            },
        )
        assert response.status == 206
        received += await response.read()
    assert hashlib.sha256(received).hexdigest() == artifact["hashes"]["sha256"] and received == data

    feedback = server.ddi(mcus[0], f"/deploymentBase/{action_id}/feedback")
    for execution, finished, cnt in (
        ("download", "none", 0),
        ("downloaded", "none", 1),
        ("proceeding", "none", 2),
        ("closed", "success", 3),
    ):
        body = {
            "id": action_id,
            "time": "20260101T120000",
            "status": {
                "execution": execution,
                "result": {"finished": finished, "progress": {"cnt": cnt, "of": 3}},
                "details": [f"step {cnt}"],
            },
        }
        assert (await server.client.post(feedback, json=body, headers=gw)).status == 200
    logs = {"lines": [{"message": "booted 1.1.0", "level": "info", "actionId": int(action_id)}]}
    assert (await server.client.post(server.ddi(mcus[0], "/logs"), json=logs, headers=gw)).status == 200

    device = await server.api("GET", f"/devices/{mcus[0]}")
    assert device["running_version"] == "1.1.0" and device["actions"][0]["status"] == "finished"
    assert (await server.api("GET", f"/rollouts/{rollout['id']}"))["status"] == "finished"
    assert (await server.api("GET", f"/devices/{mcus[0]}/logs"))[0]["message"] == "booted 1.1.0"
    poll = await (await server.client.get(server.ddi(mcus[0]), headers=gw)).json()
    assert set(poll["_links"]) == {"installedBase"}


@pytest.fixture
def server(db_server: Server) -> Server:
    """Every test of this module runs on SQLite and on PostgreSQL."""
    return db_server
