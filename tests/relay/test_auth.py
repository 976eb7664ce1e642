"""Who may ask what: target tokens, scoped gateway tokens, admin roles, and names that try to escape."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.server.tokens import hash_token
from tests.relay.conftest import IMAGE_110, AiohttpClient, Server, make_settings, start_server


async def _status(server: Server, path: str, headers: dict[str, str] | None = None) -> int:
    return (await server.client.get(path, headers=headers or {})).status


async def test_no_token_is_401_with_a_challenge(server: Server) -> None:
    await server.add_device("dev-1")
    response = await server.client.get(server.ddi("dev-1"))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "TargetToken"
    assert (await response.json())["message"].startswith("authentication required")


@pytest.mark.parametrize(
    "header",
    [
        "TargetToken wrong-token-123456",
        "TargetToken ",
        "Bearer x",
        "Basic dXNlcjpwYXNz",
        "TargetToken " + "x" * 300,
        "GatewayToken nope",
        "Garbage",
    ],
)
async def test_wrong_tokens_are_401(server: Server, header: str) -> None:
    await server.add_device("dev-1")
    assert await _status(server, server.ddi("dev-1"), {"Authorization": header}) == 401


async def test_scheme_is_case_insensitive(server: Server) -> None:
    token = await server.add_device("dev-1")
    assert await _status(server, server.ddi("dev-1"), {"Authorization": f"targettoken {token}"}) == 200


async def test_another_devices_token_is_403(server: Server) -> None:
    await server.add_device("dev-1")
    await server.add_device("dev-2")
    assert await _status(server, server.ddi("dev-2"), server.target("dev-1")) == 403


async def test_replaced_device_token_stops_working(server: Server) -> None:
    await server.add_device("dev-1")
    old = server.target("dev-1")
    assert await _status(server, server.ddi("dev-1"), old) == 200
    fresh = await server.api("POST", "/devices/dev-1/token")
    assert await _status(server, server.ddi("dev-1"), old) == 401
    assert await _status(server, server.ddi("dev-1"), {"Authorization": f"TargetToken {fresh['token']}"}) == 200


async def test_tokens_are_stored_hashed(server: Server) -> None:
    token = await server.add_device("dev-1", token="a-chosen-token-of-some-length")
    assert token == "a-chosen-token-of-some-length"
    raw = b"".join(p.read_bytes() for p in server.settings.data.glob("stm32ota.db*"))  # with the WAL
    assert token.encode() not in raw
    assert hash_token(token) in raw


async def test_gateway_token_is_scoped_to_its_gateway(server: Server) -> None:
    gw1 = await server.api("POST", "/gateway-tokens", 201, json={"gateway": "gw-1"})
    gw2 = await server.api("POST", "/gateway-tokens", 201, json={"gateway": "gw-2", "can_register": False})
    h1 = {"Authorization": f"GatewayToken {gw1['token']}"}
    h2 = {"Authorization": f"GatewayToken {gw2['token']}"}
    # gw-1 self-registers stm32-a (pending): its poll answers with no deployment.
    response = await server.client.get(server.ddi("stm32-a"), headers=h1)
    assert response.status == 200
    assert (await server.api("GET", "/devices/stm32-a"))["state"] == "pending"
    assert (await server.api("GET", "/devices/stm32-a"))["gateway"] == "gw-1"
    # Another gateway's token is refused for it, and cannot register new devices without the permission.
    assert await _status(server, server.ddi("stm32-a"), h2) == 403
    assert await _status(server, server.ddi("stm32-b"), h2) == 403
    # A device an admin pre-registered (no gateway) is outside every gateway's scope.
    await server.add_device("dev-1")
    assert await _status(server, server.ddi("dev-1"), h1) == 403
    # Pending devices may poll and report, but nothing else until accepted.
    assert await _status(server, server.ddi("stm32-a", "/deploymentBase/1"), h1) == 404
    await server.api("POST", "/devices/stm32-a/accept")
    await server.api("POST", "/devices/stm32-a/accept", 409)


async def test_revoked_gateway_token_is_401(server: Server) -> None:
    gw = await server.api("POST", "/gateway-tokens", 201, json={"gateway": "gw-1"})
    headers = {"Authorization": f"GatewayToken {gw['token']}"}
    assert await _status(server, server.ddi("stm32-a"), headers) == 200
    await server.api("DELETE", f"/gateway-tokens/{gw['id']}")
    assert await _status(server, server.ddi("stm32-a"), headers) == 401
    listed = await server.api("GET", "/gateway-tokens")
    assert listed[0]["revoked"] is True and "token" not in listed[0]


async def test_gateway_token_with_preassigned_devices(server: Server) -> None:
    await server.add_device("dev-1")
    gw = await server.api("POST", "/gateway-tokens", 201, json={"gateway": "gw-1", "devices": ["dev-1"]})
    assert await _status(server, server.ddi("dev-1"), {"Authorization": f"GatewayToken {gw['token']}"}) == 200


@pytest.mark.parametrize(
    ("role", "method", "path", "allowed"),
    [
        ("read-only", "GET", "/devices", True),
        ("read-only", "POST", "/devices", False),
        ("read-only", "POST", "/releases", False),
        ("release-manager", "POST", "/releases", True),
        ("release-manager", "POST", "/rollouts", True),
        ("release-manager", "POST", "/devices", False),
        ("release-manager", "POST", "/gateway-tokens", False),
        ("release-manager", "GET", "/admin-tokens", False),
        ("admin", "POST", "/gateway-tokens", True),
    ],
)
async def test_admin_roles(server: Server, role: str, method: str, path: str, allowed: bool) -> None:
    created = await server.api("POST", "/admin-tokens", 201, json={"role": role, "name": "t"})
    response = await server.client.request(
        method, f"/api/v1{path}", headers={"Authorization": f"Bearer {created['token']}"}, json={}
    )
    if allowed:
        assert response.status not in (401, 403), await response.text()
    else:
        assert response.status == 403
        assert role in (await response.json())["message"]


async def test_admin_token_problems(server: Server) -> None:
    assert (await server.client.get("/api/v1/devices")).status == 401
    assert (await server.client.get("/api/v1/devices", headers={"Authorization": "Bearer wrong"})).status == 401
    created = await server.api("POST", "/admin-tokens", 201, json={"role": "read-only"})
    headers = {"Authorization": f"Bearer {created['token']}"}
    assert (await server.client.get("/api/v1/devices", headers=headers)).status == 200
    await server.api("DELETE", f"/admin-tokens/{created['id']}")
    assert (await server.client.get("/api/v1/devices", headers=headers)).status == 401
    await server.api("POST", "/admin-tokens", 400, json={"role": "root"})


@pytest.mark.parametrize(
    "path",
    [
        "/DEFAULT/controller/v1/..%2F..%2Fetc",
        "/DEFAULT/controller/v1/a%2Fb",
        "/DEFAULT/controller/v1/-dash",
        "/DEFAULT/controller/v1/" + "x" * 200,
        "/DEFAULT/controller/v1/a..b",
    ],
)
async def test_path_traversal_in_controller_id_is_400(server: Server, path: str) -> None:
    await server.add_device("dev-1")
    assert await _status(server, path, server.target("dev-1")) == 400


@pytest.mark.parametrize("tenant", ["OTHER", "..", "%2E%2E", "DEFAULT%2F.."])
async def test_unknown_or_traversing_tenant_is_404(server: Server, tenant: str) -> None:
    await server.add_device("dev-1")
    assert await _status(server, f"/{tenant}/controller/v1/dev-1", server.target("dev-1")) == 404


async def test_admin_names_are_checked(server: Server) -> None:
    await server.api("POST", "/devices", 400, json={"controller_id": "../x"})
    await server.api("POST", "/devices", 400, json={"controller_id": 5})
    await server.api("POST", "/devices", 400, json={"controller_id": "ok", "token": "short"})
    await server.api("POST", "/devices", 400, json={"controller_id": "ok", "tags": "a"})
    await server.api("POST", "/devices", 400, json={"controller_id": "ok", "chip": "z80"})
    await server.api("POST", "/devices", 400, data=b"{", headers={"Content-Type": "application/json"})
    await server.api("POST", "/gateway-tokens", 400, json={"gateway": "../gw"})
    await server.api("GET", "/devices/..%2Fx", 400)
    await server.add_device("dev-1")
    await server.api("POST", "/devices", 409, json={"controller_id": "dev-1"})


async def test_bulk_device_registration(server: Server) -> None:
    devices = [{"controller_id": f"stm32-{i:04d}", "chip": "0x413"} for i in range(500)]
    created = await server.api("POST", "/devices/bulk", 201, json={"devices": devices})
    tokens = {d["controller_id"]: d["token"] for d in created["devices"]}
    assert len(tokens) == 500
    headers = {"Authorization": f"TargetToken {tokens['stm32-0123']}"}
    assert await _status(server, server.ddi("stm32-0123"), headers) == 200
    # All or nothing: one existing controllerId adds none of the others.
    await server.api(
        "POST", "/devices/bulk", 409, json={"devices": [{"controller_id": "new-1"}, {"controller_id": "stm32-0000"}]}
    )
    await server.api("GET", "/devices/new-1", 404)
    for bad in (
        {"devices": []},
        {"devices": [1]},
        {"devices": [{"controller_id": "a"}, {"controller_id": "a"}]},
        {"devices": "x"},
    ):
        await server.api("POST", "/devices/bulk", 400, json=bad)


async def test_request_attributes_again(server: Server) -> None:
    await server.add_device("dev-1")
    await server.client.put(
        server.ddi("dev-1", "/configData"), json={"data": {"a": "b"}}, headers=server.target("dev-1")
    )
    assert "configData" not in (await server.poll_json("dev-1")).get("_links", {})
    await server.api("POST", "/devices/dev-1/request-attributes")
    assert "configData" in (await server.poll_json("dev-1"))["_links"]
    pending = await server.api("GET", "/devices?state=pending")
    assert pending == []


async def test_tenants_are_separate(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    server = await start_server(aiohttp_client, make_settings(tmp_path / "data", tenants=("DEFAULT", "ACME")))
    created = await server.api("POST", "/devices?tenant=ACME", 201, json={"controller_id": "dev-1"})
    headers = {"Authorization": f"TargetToken {created['token']}"}
    assert await _status(server, server.ddi("dev-1", tenant="ACME"), headers) == 200
    assert await _status(server, server.ddi("dev-1"), headers) == 403  # the same controllerId in another tenant
    assert await server.api("GET", "/devices") == []
    assert len(await server.api("GET", "/devices?tenant=ACME")) == 1
    await server.api("GET", "/devices?tenant=NOPE", 404)


async def test_delete_device_and_list_admin_tokens(server: Server) -> None:
    await server.add_device("dev-1")
    await server.upload(IMAGE_110)
    await server.api("POST", "/actions", 201, json={"controller_id": "dev-1", "release": "1.1.0"})
    assert await _status(server, server.ddi("dev-1"), server.target("dev-1")) == 200
    await server.api("DELETE", "/devices/dev-1", 204)
    assert await _status(server, server.ddi("dev-1"), server.target("dev-1")) == 401
    await server.api("GET", "/devices/dev-1", 404)
    await server.api("DELETE", "/devices/dev-1", 404)
    tokens = await server.api("GET", "/admin-tokens")
    assert [t["role"] for t in tokens] == ["admin"] and "token" not in tokens[0]


async def test_patch_device(server: Server) -> None:
    await server.add_device("dev-1", chip=None, board=None)
    device = await server.api("PATCH", "/devices/dev-1", json={"tags": ["lab", "eu"], "chip": "stm32f407", "board": 2})
    assert device["tags"] == ["lab", "eu"] and device["chip_id"] == 0x413 and device["board_id"] == 2
    for bad in ({"colour": 1}, {"tags": "x"}, {"chip": "z80"}, {"board": -1}, {"board": "1"}, {"name": 5}):
        await server.api("PATCH", "/devices/dev-1", 400, json=bad)
