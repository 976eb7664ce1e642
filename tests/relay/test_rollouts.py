"""Staged rollouts, the same test on SQLite and on PostgreSQL: groups, thresholds, pause/resume/cancel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relay.server.rollouts import RolloutError, plan_groups
from tests.relay.conftest import IMAGE_110, AiohttpClient, Server, make_settings, start_server


def test_plan_groups() -> None:
    assert plan_groups(10, 1, [50, 100]) == [1, 5, 4]
    assert plan_groups(10, 0, [100]) == [10]
    assert plan_groups(1, 3, [100]) == [1]
    assert plan_groups(5, 1, [10, 20, 100]) == [1, 1, 3]
    for bad in ([], [50], [0, 100], [100, 50], [101]):
        with pytest.raises(RolloutError):
            plan_groups(10, 1, bad)


async def _open_action(server: Server, controller_id: str) -> int | None:
    links = (await server.poll_json(controller_id)).get("_links", {})
    href = links.get("deploymentBase", {}).get("href")
    return int(href.split("/deploymentBase/")[1].split("?")[0]) if href else None


async def _state(server: Server, rollout_id: int) -> dict[str, Any]:
    result: dict[str, Any] = await server.api("GET", f"/rollouts/{rollout_id}")
    return result


async def _finish(server: Server, controller_id: str, result: str = "success") -> None:
    action_id = await _open_action(server, controller_id)
    assert action_id is not None, f"{controller_id} was offered nothing"
    await server.feedback(controller_id, action_id, "closed", result)


async def test_rollout_groups_thresholds_pause_resume(db_server: Server) -> None:
    server = db_server
    names = [f"stm32-{i:02d}" for i in range(10)]
    for name in names:
        await server.add_device(name)
    await server.add_device("f103", chip="0x410")
    await server.upload(IMAGE_110)
    created = await server.api(
        "POST",
        "/rollouts",
        201,
        json={
            "release": "1.1.0",
            "name": "r1",
            "filter": {"devices": [*names, "f103"]},
            "canary": 1,
            "percentages": [50, 100],
            "success_threshold": 50,
            "error_threshold_count": 2,
        },
    )
    rollout_id = created["id"]
    canary, second, third = created["groups"]
    assert [len(g["devices"]) for g in created["groups"]] == [1, 5, 5]
    assert canary["status"] == "running" and second["status"] == "scheduled"
    # Only the canary is offered the release.
    canary_device = canary["devices"][0]["controller_id"]
    assert await _open_action(server, canary_device) is not None
    for name in names[1:]:
        assert await _open_action(server, name) is None
    await _finish(server, canary_device)
    state = await _state(server, rollout_id)
    assert [g["status"] for g in state["groups"]] == ["finished", "running", "scheduled"]
    # Two failures in the second group pause the rollout by itself.
    members = [d["controller_id"] for d in state["groups"][1]["devices"]]
    await _finish(server, members[0], "failure")
    await _finish(server, members[1], "failure")
    state = await _state(server, rollout_id)
    assert state["status"] == "paused" and "2 failed" in state["pause_reason"]
    assert state["groups"][2]["status"] == "scheduled"
    await server.api("POST", f"/rollouts/{rollout_id}/pause", 409)
    # Resumed, the old failures no longer count; three successes (60%) pass the 50% threshold.
    state = await server.api("POST", f"/rollouts/{rollout_id}/resume")
    assert state["status"] == "running"
    for name in members[2:]:
        await _finish(server, name)
    state = await _state(server, rollout_id)
    third = state["groups"][2]
    assert third["status"] == "running"
    skipped = {d["controller_id"]: d["skipped"] for d in third["devices"] if d["skipped"]}
    assert skipped == {"f103": "wrong-chip"}
    assert await _open_action(server, "f103") is None
    for device in third["devices"]:
        if not device["skipped"]:
            await _finish(server, device["controller_id"])
    state = await _state(server, rollout_id)
    assert state["status"] == "finished"
    assert [g["status"] for g in state["groups"]] == ["finished", "finished", "finished"]
    # Nobody was assigned twice.
    for name in names:
        assert len((await server.api("GET", f"/devices/{name}"))["actions"]) == 1
    metrics = await (await server.client.get("/metrics")).text()
    assert 'stm32ota_rollouts{state="finished"} 1.0' in metrics


async def test_rollout_error_percentage_and_cancel(db_server: Server) -> None:
    server = db_server
    names = [f"stm32-{i:02d}" for i in range(4)]
    for name in names:
        await server.add_device(name, tags=["lab"])
    await server.add_device("elsewhere")
    await server.upload(IMAGE_110)
    created = await server.api(
        "POST",
        "/rollouts",
        201,
        json={
            "release": "1.1.0",
            "filter": {"tags": ["lab"], "chip": "stm32f407"},
            "canary": 0,
            "percentages": [100],
            "error_threshold_percent": 25,
            "forced": True,
        },
    )
    (group,) = created["groups"]
    assert sorted(d["controller_id"] for d in group["devices"]) == names
    assert await _open_action(server, "elsewhere") is None
    action = await _open_action(server, names[0])
    assert action is not None
    response = await server.client.get(
        server.ddi(names[0], f"/deploymentBase/{action}"), headers=server.target(names[0])
    )
    assert (await response.json(content_type=None))["deployment"]["update"] == "forced"
    await _finish(server, names[0], "failure")
    state = await _state(server, created["id"])
    assert state["status"] == "paused" and "25%" in state["pause_reason"]
    # Cancel: every open action becomes a DDI cancelAction.
    state = await server.api("POST", f"/rollouts/{created['id']}/cancel")
    assert state["status"] == "canceled"
    for name in names[1:]:
        links = (await server.poll_json(name))["_links"]
        assert "cancelAction" in links and "deploymentBase" not in links
    await server.api("POST", f"/rollouts/{created['id']}/cancel", 409)
    await server.api("POST", f"/rollouts/{created['id']}/resume", 409)


async def test_rollout_input_errors(server: Server) -> None:
    await server.add_device("dev-1")
    await server.upload(IMAGE_110)
    for body in (
        {},
        {"release": 1},
        {"release": "9.9"},
        {"release": "1.1.0", "filter": {"colour": "red"}},
        {"release": "1.1.0", "filter": {"chip": "z80"}},
        {"release": "1.1.0", "filter": {"tags": "lab"}},
        {"release": "1.1.0", "percentages": [50]},
        {"release": "1.1.0", "percentages": ["a"]},
        {"release": "1.1.0", "success_threshold": 101},
        {"release": "1.1.0", "error_threshold_count": 0},
        {"release": "1.1.0", "forced": "yes"},
        {"release": "1.1.0", "filter": {"devices": ["nobody"]}},
    ):
        response = await server.client.post("/api/v1/rollouts", json=body, headers=server.admin)
        assert response.status in (400, 404, 409), (body, response.status)
        assert (await response.json())["message"]
    await server.api("GET", "/rollouts/99", 404)
    await server.api("POST", "/rollouts/99/pause", 404)
    await server.api("GET", "/rollouts/x", 400)
    await server.api("GET", "/rollouts/%C2%B2", 400)
    await server.api("GET", "/releases/%C2%B2", 404)


async def test_background_tick_advances_rollouts(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    """A group whose devices all report through another process still advances: the tick re-checks."""
    import asyncio

    server = await start_server(aiohttp_client, make_settings(tmp_path / "data", rollout_tick=0.05))
    await server.add_device("a")
    await server.add_device("b")
    await server.upload(IMAGE_110)
    created = await server.api("POST", "/rollouts", 201, json={"release": "1.1.0", "canary": 1})
    action = await _open_action(server, "a")
    assert action is not None
    # Close the action behind the engine's back, as a feedback to another server process would.
    from sqlalchemy import update

    from relay.server.context import CONTEXT
    from relay.server.models import Action

    ctx = server.client.app[CONTEXT]
    async with ctx.sessions.begin() as session:
        await session.execute(update(Action).where(Action.id == action).values(status="finished", active=False))
    for _ in range(100):
        if (await _state(server, created["id"]))["groups"][1]["status"] != "scheduled":
            break
        await asyncio.sleep(0.05)
    assert (await _state(server, created["id"]))["groups"][1]["status"] == "running"
