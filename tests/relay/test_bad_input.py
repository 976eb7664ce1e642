"""Every JSON endpoint, fed every kind of malformed body: a 4xx with a message, never a 500."""

from __future__ import annotations

import pytest

from tests.relay.conftest import IMAGE_110, Server

BODIES = [
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"1",
    b"{",
    b'{"a":',
    b"\x00\xff\xfe",
    b"[" * 100_000,
    b'{"controller_id": {"x": 1}, "release": [], "gateway": 1, "role": null, "status": [], "data": [],'
    b' "lines": {}, "mode": 5, "filter": [], "token": 7, "forced": "yes", "maintenance": "now", "tags": [1]}',
    b'{"controller_id": "", "release": "", "gateway": "", "status": {"execution": ""}, "data": {"": 1}}',
    b'{"controller_id": "' + b"x" * 5000 + b'"}',
    b'{"controller_id": "big", "release": "1.1.0", "board": 99999999999999999999, "canary": 1e400,'
    b' "error_threshold_count": 99999999999, "status": {"execution": "closed", "result": {"finished": "success",'
    b' "progress": {"cnt": 99999999999999, "of": 1}}, "code": 99999999999999}, "lines": [{"message": "m",'
    b' "actionId": 99999999999999}], "data": {"board_id": "99999999999"}}',
]

DDI = ["PUT /configData", "POST /deploymentBase/1/feedback", "POST /cancelAction/1/feedback", "POST /logs"]
ADMIN = [
    "POST /devices",
    "POST /actions",
    "POST /rollouts",
    "POST /gateway-tokens",
    "POST /admin-tokens",
]


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
async def test_malformed_bodies_are_4xx(db_server: Server, body: bytes) -> None:
    server = db_server
    await server.add_device("dev-1")
    await server.upload(IMAGE_110)
    await server.api("POST", "/actions", 201, json={"controller_id": "dev-1", "release": "1.1.0"})
    headers = {"Content-Type": "application/json"}
    for route in DDI:
        method, path = route.split(" ")
        response = await server.client.request(
            method, server.ddi("dev-1", path), data=body, headers={**headers, **server.target("dev-1")}
        )
        assert 400 <= response.status < 500, (route, response.status, await response.text())
        assert (await response.json())["message"]
    for route in ADMIN:
        method, path = route.split(" ")
        response = await server.client.request(method, f"/api/v1{path}", data=body, headers={**headers, **server.admin})
        assert 400 <= response.status < 500, (route, response.status, await response.text())
        assert (await response.json())["message"]
    # Nothing changed.
    (action,) = (await server.api("GET", "/devices/dev-1"))["actions"]
    assert action["status"] == "scheduled"
    assert len(await server.api("GET", "/devices")) == 1


async def test_device_token_body_is_optional_but_typed(server: Server) -> None:
    await server.add_device("dev-1")
    for body in (b"[]", b"{", b'{"token": 5}', b'{"token": "short"}'):
        response = await server.client.post(
            "/api/v1/devices/dev-1/token", data=body, headers={"Content-Type": "application/json", **server.admin}
        )
        assert response.status == 400, body
    assert (await server.client.post("/api/v1/devices/dev-1/token", headers=server.admin)).status == 200


async def test_health_and_metrics(server: Server) -> None:
    assert await (await server.client.get("/healthz")).json() == {"status": "ok"}
    await server.add_device("dev-1")
    await server.upload(IMAGE_110)
    created = await server.api("POST", "/actions", 201, json={"controller_id": "dev-1", "release": "1.1.0"})
    await server.poll("dev-1")
    await server.feedback("dev-1", created["id"], "closed", "failure")
    text = await (await server.client.get("/metrics")).text()
    assert 'stm32ota_ddi_polls_total{result="ok"} 1.0' in text
    assert 'stm32ota_ddi_feedback_total{execution="closed",state="error"} 1.0' in text
    assert "stm32ota_http_request_duration_seconds_bucket{" in text
    assert 'route="/{tenant}/controller/v1/{controllerId}"' in text
    assert 'stm32ota_rollouts{state="running"} 0.0' in text
