"""The DDI resources, with hawkBit's request and response shapes (ddi_api.md and the hawkbit-ddi-api models)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from tests.relay.conftest import IMAGE_110, Server


def _path(href: str) -> str:
    """The path (and query) of an absolute link the server built."""
    return "/" + href.split("://", 1)[1].split("/", 1)[1]


async def _assigned(server: Server, controller_id: str = "dev-1", **action: Any) -> tuple[int, dict[str, Any]]:
    if controller_id not in server.tokens:
        await server.add_device(controller_id)
    await server.upload(IMAGE_110) if not await server.api("GET", "/releases") else None
    created = await server.api(
        "POST", "/actions", 201, json={"controller_id": controller_id, "release": "1.1.0", **action}
    )
    return int(created["id"]), created


async def test_poll_of_a_new_device_asks_for_config_data(server: Server) -> None:
    await server.add_device("dev-1")
    body = await server.poll_json("dev-1")
    assert body["config"] == {"polling": {"sleep": "00:05:00"}}
    assert body["_links"] == {
        "configData": {"href": f"http://127.0.0.1:{server.client.port}/DEFAULT/controller/v1/dev-1/configData"}
    }


async def test_poll_links_the_deployment_with_a_change_hash(server: Server) -> None:
    action_id, _ = await _assigned(server)
    body = await server.poll_json("dev-1")
    href = body["_links"]["deploymentBase"]["href"]
    assert re.search(rf"/DEFAULT/controller/v1/dev-1/deploymentBase/{action_id}\?c=-?\d+$", href)
    assert "cancelAction" not in body["_links"]


async def test_poll_etag_and_if_none_match(server: Server) -> None:
    await server.add_device("dev-1")
    first = await server.poll("dev-1")
    etag = first.headers["ETag"]
    again = await server.poll("dev-1", {**server.target("dev-1"), "If-None-Match": etag})
    assert again.status == 304
    assert again.headers["ETag"] == etag
    await _assigned(server)
    changed = await server.poll("dev-1", {**server.target("dev-1"), "If-None-Match": etag})
    assert changed.status == 200
    assert changed.headers["ETag"] != etag


async def test_deployment_base_etag(server: Server) -> None:
    action_id, _ = await _assigned(server)
    path = server.ddi("dev-1", f"/deploymentBase/{action_id}")
    etag = (await server.client.get(path, headers=server.target("dev-1"))).headers["ETag"]
    again = await server.client.get(path, headers={**server.target("dev-1"), "If-None-Match": f'"x", {etag}'})
    assert again.status == 304


async def test_change_hash_changes_when_the_action_is_forced(server: Server) -> None:
    action_id, _ = await _assigned(server)
    soft = (await server.poll_json("dev-1"))["_links"]["deploymentBase"]["href"]
    await server.api("POST", f"/actions/{action_id}/cancel")
    await server.feedback("dev-1", action_id, "closed", "success", kind="cancelAction")
    await _assigned(server, forced=True)
    forced = (await server.poll_json("dev-1"))["_links"]["deploymentBase"]["href"]
    assert soft.split("?c=")[1] != forced.split("?c=")[1]


async def test_deployment_base_shape(server: Server) -> None:
    action_id, _ = await _assigned(server)
    href = (await server.poll_json("dev-1"))["_links"]["deploymentBase"]["href"]
    response = await server.client.get(_path(href), headers=server.target("dev-1"))
    assert response.status == 200
    body = await response.json(content_type=None)
    data = IMAGE_110.read_bytes()
    assert body["id"] == str(action_id)
    deployment = body["deployment"]
    assert deployment["download"] == "attempt" and deployment["update"] == "attempt"
    assert "maintenanceWindow" not in deployment
    (chunk,) = deployment["chunks"]
    assert chunk["part"] == "os" and chunk["version"] == "1.1.0"
    (artifact,) = chunk["artifacts"]
    assert artifact["size"] == len(data)
    assert artifact["hashes"] == {
        "sha1": hashlib.sha1(data).hexdigest(),
        "md5": hashlib.md5(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert set(artifact["_links"]) == {"download", "download-http", "md5sum", "md5sum-http"}
    assert artifact["_links"]["md5sum"]["href"] == artifact["_links"]["download"]["href"] + ".MD5SUM"
    assert "actionHistory" not in body


async def test_forced_and_download_only_modes(server: Server) -> None:
    action_id, _ = await _assigned(server, forced=True, download_only=True)
    response = await server.client.get(
        server.ddi("dev-1", f"/deploymentBase/{action_id}"), headers=server.target("dev-1")
    )
    deployment = (await response.json(content_type=None))["deployment"]
    assert deployment["download"] == "forced" and deployment["update"] == "skip"


@pytest.mark.parametrize(("window", "expected"), [({"start": "00:00", "duration": 86400}, "available")])
async def test_maintenance_window(server: Server, window: dict[str, Any], expected: str) -> None:
    action_id, _ = await _assigned(server, maintenance=window)
    response = await server.client.get(
        server.ddi("dev-1", f"/deploymentBase/{action_id}"), headers=server.target("dev-1")
    )
    deployment = (await response.json(content_type=None))["deployment"]
    assert deployment["maintenanceWindow"] == expected
    assert deployment["update"] == "attempt"


def test_window_closed_means_update_skip() -> None:
    import datetime as dt

    from relay.server.actions import window_available

    window = {"start": "02:00", "duration": 3600}
    assert window_available(window, dt.datetime(2026, 1, 1, 2, 30, tzinfo=dt.UTC)) is True
    assert window_available(window, dt.datetime(2026, 1, 1, 3, 30, tzinfo=dt.UTC)) is False
    overnight = {"start": "23:00", "duration": 7200}
    assert window_available(overnight, dt.datetime(2026, 1, 1, 0, 30, tzinfo=dt.UTC)) is True
    assert window_available(None) is None


async def test_bad_maintenance_window_is_400(server: Server) -> None:
    await server.add_device("dev-1")
    await server.upload(IMAGE_110)
    await server.api(
        "POST",
        "/actions",
        400,
        json={"controller_id": "dev-1", "release": "1.1.0", "maintenance": {"start": "25:00", "duration": 10}},
    )


async def test_action_history_on_request(server: Server) -> None:
    action_id, _ = await _assigned(server)
    await server.feedback("dev-1", action_id, "proceeding", details=["Writing slot 1"])
    response = await server.client.get(
        server.ddi("dev-1", f"/deploymentBase/{action_id}?actionHistory=5"), headers=server.target("dev-1")
    )
    history = (await response.json(content_type=None))["actionHistory"]
    assert history["status"] == "RUNNING"
    assert "Writing slot 1" in history["messages"]


@pytest.mark.parametrize(
    ("execution", "finished", "state", "active"),
    [
        ("proceeding", "none", "running", True),
        ("scheduled", "none", "running", True),
        ("resumed", "none", "running", True),
        ("download", "none", "download", True),
        ("downloaded", "none", "downloaded", True),
        ("rejected", "none", "warning", True),
        ("canceled", "none", "canceled", False),
        ("closed", "success", "finished", False),
        ("closed", "none", "finished", False),
        ("closed", "failure", "error", False),
    ],
)
async def test_feedback_maps_to_action_states(
    server: Server, execution: str, finished: str, state: str, active: bool
) -> None:
    action_id, _ = await _assigned(server)
    await server.feedback(
        "dev-1",
        action_id,
        execution,
        finished,
        code=200,
        details=["x"],
        **{"result": {"finished": finished, "progress": {"cnt": 2, "of": 5}}},
    )
    device = await server.api("GET", "/devices/dev-1")
    (action,) = device["actions"]
    assert (action["status"], action["active"]) == (state, active)
    assert action["progress"] == {"cnt": 2, "of": 5} and action["code"] == 200
    if state == "finished":
        assert device["running_version"] == "1.1.0"
        body = await server.poll_json("dev-1")
        assert "deploymentBase" not in body.get("_links", {})
        assert body["_links"]["installedBase"]["href"].endswith(f"/installedBase/{action_id}")


async def test_downloaded_closes_a_download_only_action(server: Server) -> None:
    action_id, _ = await _assigned(server, download_only=True)
    await server.feedback("dev-1", action_id, "downloaded")
    (action,) = (await server.api("GET", "/devices/dev-1"))["actions"]
    assert action["status"] == "finished" and not action["active"]


async def test_feedback_to_a_closed_action_is_410(server: Server) -> None:
    action_id, _ = await _assigned(server)
    await server.feedback("dev-1", action_id, "closed", "success")
    await server.feedback("dev-1", action_id, "proceeding", expect=410)


async def test_feedback_for_another_devices_action_is_404(server: Server) -> None:
    action_id, _ = await _assigned(server)
    await server.add_device("dev-2")
    await server.feedback("dev-2", action_id, "closed", "success", expect=404)
    (action,) = (await server.api("GET", "/devices/dev-1"))["actions"]
    assert action["active"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b"{}",
        b'{"status": "closed"}',
        b'{"status": {"execution": "closed"}}',
        b'{"status": {"execution": "finished", "result": {"finished": "success"}}}',
        b'{"status": {"execution": "closed", "result": {"finished": "maybe"}}}',
        b'{"status": {"execution": 3, "result": {"finished": "success"}}}',
        b'{"status": {"execution": "closed", "result": {"finished": "success", "progress": {"cnt": "2"}}}}',
        b'{"status": {"execution": "closed", "result": {"finished": "success", "progress": {"cnt": -1}}}}',
        b'{"status": {"execution": "closed", "result": {"finished": "success"}, "code": "200"}}',
        b'{"status": {"execution": "closed", "result": {"finished": "success"}, "details": "text"}}',
        b'{"status": {"execution": "closed", "result": {"finished": "success"}, "details": [1]}}',
        b"\xff\xfe",
    ],
)
async def test_malformed_feedback_is_400(server: Server, body: bytes) -> None:
    action_id, _ = await _assigned(server)
    response = await server.client.post(
        server.ddi("dev-1", f"/deploymentBase/{action_id}/feedback"),
        data=body,
        headers={**server.target("dev-1"), "Content-Type": "application/json"},
    )
    assert response.status == 400, await response.text()
    error = await response.json()
    assert error["message"]
    (action,) = (await server.api("GET", "/devices/dev-1"))["actions"]
    assert action["status"] == "scheduled"


async def test_bad_action_ids(server: Server) -> None:
    await server.add_device("dev-1")
    for path in (
        "/deploymentBase/abc",
        "/deploymentBase/-1",
        "/cancelAction/x",
        "/installedBase/1e3",
        "/deploymentBase/%C2%B2",
        "/deploymentBase/" + "9" * 40,
    ):
        response = await server.client.get(server.ddi("dev-1", path), headers=server.target("dev-1"))
        assert response.status == 400, path
    response = await server.client.get(server.ddi("dev-1", "/deploymentBase/999"), headers=server.target("dev-1"))
    assert response.status == 404


async def test_cancel_action_flow(server: Server) -> None:
    action_id, _ = await _assigned(server)
    await server.api("POST", f"/actions/{action_id}/cancel")
    links = (await server.poll_json("dev-1"))["_links"]
    assert "deploymentBase" not in links
    href = links["cancelAction"]["href"]
    response = await server.client.get(_path(href), headers=server.target("dev-1"))
    assert await response.json(content_type=None) == {"id": str(action_id), "cancelAction": {"stopId": str(action_id)}}
    # Progress on the deployment does not undo the cancel; closed+success on the cancel confirms it.
    await server.feedback("dev-1", action_id, "proceeding")
    await server.feedback("dev-1", action_id, "closed", "success", kind="cancelAction")
    (action,) = (await server.api("GET", "/devices/dev-1"))["actions"]
    assert action["status"] == "canceled" and not action["active"]
    await server.feedback("dev-1", action_id, "closed", "success", kind="cancelAction", expect=410)


async def test_cancel_rejected_keeps_the_action_running(server: Server) -> None:
    action_id, _ = await _assigned(server)
    await server.api("POST", f"/actions/{action_id}/cancel")
    await server.feedback("dev-1", action_id, "rejected", kind="cancelAction")
    (action,) = (await server.api("GET", "/devices/dev-1"))["actions"]
    assert action["status"] == "running" and action["active"]
    assert "deploymentBase" in (await server.poll_json("dev-1"))["_links"]


async def test_cancel_feedback_on_an_action_not_being_canceled_is_404(server: Server) -> None:
    action_id, _ = await _assigned(server)
    await server.feedback("dev-1", action_id, "closed", "success", kind="cancelAction", expect=404)
    response = await server.client.get(
        server.ddi("dev-1", f"/cancelAction/{action_id}"), headers=server.target("dev-1")
    )
    assert response.status == 404


async def test_config_data_modes(server: Server) -> None:
    await server.add_device("dev-1", chip=None, board=None)

    async def put(body: Any, expect: int = 200) -> None:
        response = await server.client.put(
            server.ddi("dev-1", "/configData"), json=body, headers=server.target("dev-1")
        )
        assert response.status == expect, await response.text()

    await put({"data": {"chip_id": "0x413", "board_id": "1", "bootloader_version": "1.0"}})
    device = await server.api("GET", "/devices/dev-1")
    assert device["chip_id"] == 0x413 and device["board_id"] == 1
    assert "configData" not in (await server.poll_json("dev-1")).get("_links", {})
    await put({"mode": "merge", "data": {"running_version": "1.0.0"}})
    assert (await server.api("GET", "/devices/dev-1"))["attributes"]["bootloader_version"] == "1.0"
    await put({"mode": "remove", "data": {"bootloader_version": ""}})
    attributes = (await server.api("GET", "/devices/dev-1"))["attributes"]
    assert "bootloader_version" not in attributes and attributes["running_version"] == "1.0.0"
    await put({"mode": "replace", "data": {"chip": "stm32f103c8"}})
    device = await server.api("GET", "/devices/dev-1")
    assert device["attributes"] == {"chip": "stm32f103c8"} and device["chip_id"] == 0x410
    for bad in (
        {"data": {"k": 1}},
        {"mode": "append", "data": {}},
        {"data": "x"},
        {},
        {"data": {"chip": "z80"}},
        {"data": {"board_id": "one"}},
    ):
        await put(bad, 400)


async def test_installed_base(server: Server) -> None:
    action_id, _ = await _assigned(server)
    path = server.ddi("dev-1", f"/installedBase/{action_id}")
    assert (await server.client.get(path, headers=server.target("dev-1"))).status == 404  # still active
    await server.feedback("dev-1", action_id, "closed", "success")
    response = await server.client.get(path, headers=server.target("dev-1"))
    body = await response.json(content_type=None)
    assert body["id"] == str(action_id) and body["deployment"]["chunks"][0]["version"] == "1.1.0"


async def test_software_module_artifact_list(server: Server) -> None:
    await _assigned(server)
    release = (await server.api("GET", "/releases"))[0]
    response = await server.client.get(
        server.ddi("dev-1", f"/softwaremodules/{release['id']}/artifacts"), headers=server.target("dev-1")
    )
    (artifact,) = await response.json(content_type=None)
    assert artifact["filename"] == release["filename"] and artifact["hashes"]["sha1"] == release["sha1"]


async def test_log_batches(server: Server) -> None:
    await server.add_device("dev-1")
    lines = [{"message": f"line {i}", "level": "info", "time": "2026-01-01T00:00:00Z"} for i in range(3)]
    response = await server.client.post(
        server.ddi("dev-1", "/logs"), json={"lines": lines}, headers=server.target("dev-1")
    )
    assert (await response.json()) == {"stored": 3}
    logs = await server.api("GET", "/devices/dev-1/logs")
    assert [entry["message"] for entry in logs] == ["line 0", "line 1", "line 2"]
    for bad in ({"lines": "x"}, {"lines": [1]}, {"lines": [{"level": "info"}]}, {"lines": [{"message": 2}]}):
        response = await server.client.post(server.ddi("dev-1", "/logs"), json=bad, headers=server.target("dev-1"))
        assert response.status == 400


async def test_long_poll_returns_when_an_action_arrives(server: Server) -> None:
    import asyncio

    await server.add_device("dev-1")
    await server.upload(IMAGE_110)
    etag = (await server.poll("dev-1")).headers["ETag"]

    async def assign_soon() -> None:
        await asyncio.sleep(0.2)
        await server.api("POST", "/actions", 201, json={"controller_id": "dev-1", "release": "1.1.0"})

    task = asyncio.create_task(assign_soon())
    response = await server.client.get(
        server.ddi("dev-1") + "?wait=30", headers={**server.target("dev-1"), "If-None-Match": etag}
    )
    await task
    assert response.status == 200
    assert "deploymentBase" in (await response.json(content_type=None))["_links"]
    expired = await server.client.get(
        server.ddi("dev-1") + "?wait=0.1", headers={**server.target("dev-1"), "If-None-Match": response.headers["ETag"]}
    )
    assert expired.status == 304
    for bad in ("x", "-1", "100000"):
        assert (
            await server.client.get(server.ddi("dev-1") + f"?wait={bad}", headers=server.target("dev-1"))
        ).status == 400


async def test_gateway_events_stream(server: Server) -> None:
    import asyncio

    gw = await server.api("POST", "/gateway-tokens", 201, json={"gateway": "gw-1"})
    headers = {"Authorization": f"GatewayToken {gw['token']}"}
    assert (await server.client.get(server.ddi("stm32-aa"), headers=headers)).status == 200
    await server.api("POST", "/devices/stm32-aa/accept")
    response = await server.client.get("/DEFAULT/gateway/v1/events", headers=headers)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert await response.content.readuntil(b"\n\n") == b"event: hello\ndata: {}\n\n"
    await server.upload(IMAGE_110)
    await server.client.put(server.ddi("stm32-aa", "/configData"), json={"data": {"chip_id": "0x413"}}, headers=headers)
    await server.api("POST", "/actions", 201, json={"controller_id": "stm32-aa", "release": "1.1.0"})
    event = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10)
    assert event == b'event: poll\ndata: {"controllerId": "stm32-aa"}\n\n'
    response.close()
    assert (await server.client.get("/DEFAULT/gateway/v1/events", headers=server.admin)).status == 401


async def test_last_seen_is_recorded_without_invalidating(server: Server) -> None:
    from relay.server.context import CONTEXT

    await server.add_device("dev-1")
    await server.add_device("dev-2")
    await server.poll("dev-1")
    await server.poll("dev-2")
    from sqlalchemy import select

    from relay.server.models import Device

    ctx = server.client.app[CONTEXT]

    async def changed_at() -> list[object]:
        async with ctx.sessions() as session:
            return list((await session.execute(select(Device.updated_at).order_by(Device.id))).scalars())

    before = await changed_at()
    await ctx.flush_last_seen()
    devices = {d["controller_id"]: d for d in await server.api("GET", "/devices")}
    assert devices["dev-1"]["last_seen_at"] and devices["dev-2"]["last_seen_at"]
    assert await changed_at() == before  # the flush is not a change the other processes' caches drop


async def test_closed_maintenance_window_skips_the_update(server: Server) -> None:
    import datetime as dt

    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)).strftime("%H:00")
    closed, _ = await _assigned(server, "dev-1", maintenance={"start": later, "duration": 3600})
    response = await server.client.get(server.ddi("dev-1", f"/deploymentBase/{closed}"), headers=server.target("dev-1"))
    deployment = (await response.json(content_type=None))["deployment"]
    assert deployment["maintenanceWindow"] == "unavailable"
    assert deployment["download"] == "attempt" and deployment["update"] == "skip"


def test_structured_access_log(caplog: pytest.LogCaptureFixture) -> None:
    import json
    import logging

    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from relay.server.access_log import JsonAccessLogger

    request = make_mocked_request(
        "GET", "/DEFAULT/controller/v1/dev-1", headers={"Authorization": "TargetToken secret-value", "User-Agent": "t"}
    )
    response = web.Response(text="{}")
    logger = JsonAccessLogger(logging.getLogger("aiohttp.access"), "")
    access = logging.getLogger("relay.server.access")
    access.addHandler(caplog.handler)  # also when `serve` ran in this process and stopped propagation
    try:
        with caplog.at_level(logging.INFO, logger="relay.server.access"):
            logger.log(request, response, 0.0123)
    finally:
        access.removeHandler(caplog.handler)
    record = next(r for r in caplog.records if r.name == "relay.server.access")
    entry = json.loads(record.getMessage())
    assert entry["method"] == "GET" and entry["path"] == "/DEFAULT/controller/v1/dev-1"
    assert entry["status"] == 200 and entry["ms"] == 12.3 and entry["agent"] == "t"
    assert "secret-value" not in record.getMessage()


@pytest.fixture
def server(db_server: Server) -> Server:
    """Every test of this module runs on SQLite and on PostgreSQL."""
    return db_server
