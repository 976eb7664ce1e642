"""hawkBit's Direct Device Integration API (DDI v1), as its ``hawkbit-ddi-api`` models define it.

Routes under ``/{tenant}/controller/v1/{controllerId}``: the poll, ``deploymentBase/{actionId}`` and its
``feedback``, ``cancelAction/{actionId}`` and its ``feedback``, ``configData``, ``installedBase/{actionId}``,
``softwaremodules/{id}/artifacts`` and the artifact download (with ``.MD5SUM``).  Our extensions, which
plain DDI clients never call: ``?wait=N`` on the poll (a long poll), ``logs`` (device log lines in batches)
and ``/{tenant}/gateway/v1/events`` (server-sent events for one gateway's devices).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any

from aiohttp import web
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.image import ImageError, chip_id_from_name

from . import rollouts
from .actions import (
    EXECUTIONS,
    FINISHED_RESULTS,
    cancel_transition,
    change_hash,
    deployment_transition,
    hawkbit_status,
    window_available,
)
from .auth import authenticate_device, authenticate_gateway
from .context import CONTEXT, ActionSummary, DevicePrincipal, PollState, ServerContext
from .errors import http_error
from .models import Action, ActionStatus, Device, DeviceLog, Release, utcnow
from .ranges import serve_bytes
from .storage import artifact_path
from .validate import bad_request, check_controller_id, field, is_number, json_body, optional

__all__ = ["add_routes", "poll_sleep"]

log = logging.getLogger(__name__)

JSON_TYPE = "application/hal+json"
MAX_DETAILS = 100  # feedback detail lines kept per message
MAX_DETAIL_LENGTH = 2000
MAX_LOG_LINES = 1000  # lines per log batch
MAX_LOG_LENGTH = 4096
LONG_POLL_RECHECK = 2.0  # seconds between database re-checks while a long poll waits (other processes)
SSE_KEEPALIVE = 15.0  # seconds of silence before a comment line keeps proxies from closing the stream
SSE_COALESCE = 0.05  # seconds to gather a burst of changes into one event per device
MAX_ATTRIBUTES = 200
MAX_ATTRIBUTE_LENGTH = 1024


def poll_sleep(seconds: int) -> str:
    """``config.polling.sleep``: ``HH:MM:SS``."""
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _ctx(request: web.Request) -> ServerContext:
    return request.app[CONTEXT]


def _tenant(request: web.Request) -> str:
    tenant = request.match_info["tenant"]
    if tenant not in _ctx(request).settings.tenants:
        raise http_error(web.HTTPNotFound, "unknown-tenant", f"no tenant {tenant[:64]!r} on this server")
    return tenant


def _base(request: web.Request, tenant: str, controller_id: str) -> str:
    public = _ctx(request).settings.public_url
    root = public.rstrip("/") if public else f"{request.scheme}://{request.host}"
    return f"{root}/{tenant}/controller/v1/{controller_id}"


def _int_param(request: web.Request, name: str) -> int:
    text = request.match_info[name]
    if not is_number(text):
        raise bad_request(f"{name} must be a number, not {text[:40]!r}", "bad-id")
    return int(text)


async def _device(request: web.Request, *, register: bool = False) -> tuple[ServerContext, DevicePrincipal]:
    ctx = _ctx(request)
    tenant = _tenant(request)
    controller_id = check_controller_id(request.match_info["controllerId"])
    principal = await authenticate_device(ctx, request, tenant, controller_id, register=register)
    ctx.seen(principal.device_id)
    return ctx, principal


def _json(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(body, separators=(",", ":")), status=status, content_type=JSON_TYPE, headers=headers
    )


async def _owned_action(session: AsyncSession, principal: DevicePrincipal, action_id: int) -> tuple[Action, Release]:
    row = (
        await session.execute(
            select(Action, Release).join(Release, Release.id == Action.release_id).where(Action.id == action_id)
        )
    ).first()
    if row is None or row[0].device_id != principal.device_id:
        raise http_error(web.HTTPNotFound, "unknown-action", f"action {action_id} does not exist for this device")
    return row[0], row[1]


# --- the poll ---------------------------------------------------------------------------------------------------


async def _poll_state(ctx: ServerContext, device_id: int) -> PollState:
    cached = ctx.poll_cache.get(device_id)
    if cached is not None:
        return cached
    async with ctx.sessions() as session:
        device = (
            await session.execute(
                select(Device.request_attributes, Device.installed_action_id, Device.state).where(
                    Device.id == device_id
                )
            )
        ).one()
        action = None
        if device.state == "active":
            action = (
                await session.execute(
                    select(Action)
                    .where(Action.device_id == device_id, Action.active.is_(True))
                    .order_by(Action.id)
                    .limit(1)
                )
            ).scalar_one_or_none()
    state = PollState(
        state=device.state,
        request_attributes=device.request_attributes,
        installed_action_id=device.installed_action_id,
        action=None
        if action is None
        else ActionSummary(
            id=action.id,
            status=action.status,
            forced=action.forced,
            download_only=action.download_only,
            maintenance=action.maintenance,
        ),
    )
    ctx.poll_cache.put(device_id, state)
    return state


async def _poll_body(ctx: ServerContext, request: web.Request, principal: DevicePrincipal) -> dict[str, Any]:
    base = _base(request, principal.tenant, principal.controller_id)
    body: dict[str, Any] = {"config": {"polling": {"sleep": poll_sleep(ctx.settings.poll_interval)}}}
    links: dict[str, Any] = {}
    state = await _poll_state(ctx, principal.device_id)
    action = state.action
    if action is not None:
        if action.status == "canceling":
            links["cancelAction"] = {"href": f"{base}/cancelAction/{action.id}"}
        else:
            window = window_available(action.maintenance)
            c = change_hash(
                action.id,
                forced=action.forced,
                download_only=action.download_only,
                window=window,
                state=action.status,
            )
            links["deploymentBase"] = {"href": f"{base}/deploymentBase/{action.id}?c={c}"}
    if state.installed_action_id is not None:
        links["installedBase"] = {"href": f"{base}/installedBase/{state.installed_action_id}"}
    if state.request_attributes:
        links["configData"] = {"href": f"{base}/configData"}
    if links:
        body["_links"] = links
    return body


def _encoded(body: dict[str, Any]) -> tuple[str, str]:
    """The JSON text and its ETag (the answers are built in a fixed key order, so the same state gives the
    same bytes in every process)."""
    text = json.dumps(body, separators=(",", ":"))
    return text, '"' + hashlib.sha1(text.encode()).hexdigest() + '"'


def _etag_matches(header: str | None, etag: str) -> bool:
    return header is not None and etag in (tag.strip() for tag in header.split(","))


async def poll(request: web.Request) -> web.StreamResponse:
    ctx, principal = await _device(request, register=True)
    wait_text = request.query.get("wait")
    wait = 0.0
    if wait_text is not None:
        try:
            wait = float(wait_text)
        except ValueError:
            raise bad_request("wait must be a number of seconds", "bad-wait") from None
        if not 0 <= wait <= ctx.settings.long_poll_max:
            raise bad_request(f"wait must be between 0 and {ctx.settings.long_poll_max} seconds", "bad-wait")
    if_none_match = request.headers.get("If-None-Match")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        text, etag = _encoded(await _poll_body(ctx, request, principal))
        remaining = deadline - loop.time()
        if not _etag_matches(if_none_match, etag) or remaining <= 0:
            break
        await ctx.notifier.wait_device(principal.device_id, min(remaining, LONG_POLL_RECHECK))
    if _etag_matches(if_none_match, etag):
        ctx.metrics.polls.labels("not-modified").inc()
        return web.Response(status=304, headers={"ETag": etag})
    ctx.metrics.polls.labels("ok").inc()
    return web.Response(text=text, content_type=JSON_TYPE, headers={"ETag": etag})


# --- deploymentBase and installedBase -------------------------------------------------------------------------


async def _history(session: AsyncSession, action_id: int, count: int) -> list[str]:
    query = select(ActionStatus).where(ActionStatus.action_id == action_id).order_by(ActionStatus.id.desc())
    if count >= 0:
        query = query.limit(count)
    messages: list[str] = []
    for entry in (await session.execute(query)).scalars():
        texts = [str(m) for m in entry.messages] or [f"{hawkbit_status(entry.status)}"]
        messages.extend(texts)
    return messages


def _chunks(base: str, release: Release) -> list[dict[str, Any]]:
    artifact = f"{base}/softwaremodules/{release.id}/artifacts/{release.filename}"
    http_artifact = "http://" + artifact.split("://", 1)[1]
    metadata = [{"key": "sha256", "value": release.sha256}]
    if release.chip_id is not None:
        metadata.append({"key": "chip_id", "value": f"0x{release.chip_id:03x}"})
        metadata.append({"key": "board_id", "value": str(release.board_id or 0)})
    if release.security_counter is not None:
        metadata.append({"key": "security_counter", "value": str(release.security_counter)})
    return [
        {
            "part": "os",
            "version": release.version,
            "name": release.name,
            "artifacts": [
                {
                    "filename": release.filename,
                    "hashes": {"sha1": release.sha1, "md5": release.md5, "sha256": release.sha256},
                    "size": release.size,
                    "_links": {
                        "download": {"href": artifact},
                        "download-http": {"href": http_artifact},
                        "md5sum": {"href": artifact + ".MD5SUM"},
                        "md5sum-http": {"href": http_artifact + ".MD5SUM"},
                    },
                }
            ],
            "metadata": metadata,
        }
    ]


def _history_count(request: web.Request) -> int | None:
    text = request.query.get("actionHistory")
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise bad_request("actionHistory must be an integer (-1 for all messages)", "bad-action-history") from None


async def _deployment(request: web.Request, action: Action, release: Release, session: AsyncSession) -> dict[str, Any]:
    principal_base = _base(request, release.tenant, request.match_info["controllerId"])
    window = window_available(action.maintenance)
    download = "forced" if action.forced else "attempt"
    update_mode = "skip" if action.download_only or window is False else download
    deployment: dict[str, Any] = {"download": download, "update": update_mode}
    if window is not None:
        deployment["maintenanceWindow"] = "available" if window else "unavailable"
    deployment["chunks"] = _chunks(principal_base, release)
    body: dict[str, Any] = {"id": str(action.id), "deployment": deployment}
    count = _history_count(request)
    if count:
        body["actionHistory"] = {
            "status": hawkbit_status(action.status),
            "messages": await _history(session, action.id, count),
        }
    return body


async def deployment_base(request: web.Request) -> web.Response:
    ctx, principal = await _device(request)
    action_id = _int_param(request, "actionId")
    async with ctx.sessions() as session:
        action, release = await _owned_action(session, principal, action_id)
        if action.status in ("canceling", "canceled"):
            raise http_error(web.HTTPNotFound, "canceled", f"action {action_id} is canceled: see cancelAction")
        body = await _deployment(request, action, release, session)
    ctx.metrics.polls.labels("deployment").inc()
    text, etag = _encoded(body)
    if _etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers={"ETag": etag})
    return web.Response(text=text, content_type=JSON_TYPE, headers={"ETag": etag})


async def installed_base(request: web.Request) -> web.Response:
    ctx, principal = await _device(request)
    action_id = _int_param(request, "actionId")
    async with ctx.sessions() as session:
        action, release = await _owned_action(session, principal, action_id)
        if action.active or action.status != "finished":
            raise http_error(web.HTTPNotFound, "not-installed", f"action {action_id} is not a finished installation")
        body = await _deployment(request, action, release, session)
    return _json(body)


# --- feedback ---------------------------------------------------------------------------------------------------


def _parse_feedback(data: dict[str, Any]) -> tuple[str, str, tuple[int, int] | None, int | None, list[str]]:
    status = field(data, "status", dict)
    execution = field(status, "execution", str, "status.")
    if execution not in EXECUTIONS:
        raise bad_request(
            f"status.execution must be one of {', '.join(EXECUTIONS)}, not {execution[:40]!r}", "bad-field"
        )
    result = field(status, "result", dict, "status.")
    finished = field(result, "finished", str, "status.result.")
    if finished not in FINISHED_RESULTS:
        raise bad_request(f"status.result.finished must be one of {', '.join(FINISHED_RESULTS)}", "bad-field")
    progress = None
    if result.get("progress") is not None:
        raw = field(result, "progress", dict, "status.result.")
        cnt = field(raw, "cnt", int, "status.result.progress.")
        of = optional(raw, "of", int, cnt, "status.result.progress.")
        if cnt < 0 or of < 0:
            raise bad_request("status.result.progress: cnt and of must not be negative", "bad-field")
        progress = (cnt, of)
    code = optional(status, "code", int, None, "status.")
    details_raw = optional(status, "details", list, [], "status.")
    if not all(isinstance(d, str) for d in details_raw):
        raise bad_request("status.details must be a list of strings", "bad-field")
    details = [d[:MAX_DETAIL_LENGTH] for d in details_raw[:MAX_DETAILS]]
    return execution, finished, progress, code, details


async def _apply_feedback(request: web.Request, *, cancel: bool) -> web.Response:
    ctx, principal = await _device(request)
    action_id = _int_param(request, "actionId")
    execution, finished, progress, code, details = _parse_feedback(await json_body(request))
    async with ctx.sessions.begin() as session:
        action, release = await _owned_action(session, principal, action_id)
        if not action.active:
            raise http_error(web.HTTPGone, "action-closed", f"action {action_id} is no longer active")
        if cancel and action.status != "canceling":
            raise http_error(web.HTTPNotFound, "not-canceling", f"action {action_id} is not being canceled")
        if cancel:
            new_state = cancel_transition(execution, finished)
            recorded = "cancel_rejected" if new_state == "running" else (new_state or action.status)
        else:
            new_state = deployment_transition(execution, finished, download_only=action.download_only)
            if action.status == "canceling" and new_state not in ("finished", "error", "canceled"):
                new_state = None  # still being canceled: progress reports do not undo the cancel
            recorded = new_state or action.status
        now = utcnow()
        if new_state is not None:
            action.status = new_state
            action.active = new_state not in ("finished", "error", "canceled")
        if progress is not None:
            action.progress_cnt, action.progress_of = progress
        if code is not None:
            action.last_code = code
        action.updated_at = now
        session.add(
            ActionStatus(
                action_id=action.id, status=recorded, execution=execution, code=code, messages=details, created_at=now
            )
        )
        if action.status == "finished" and not action.download_only:
            await session.execute(
                update(Device)
                .where(Device.id == principal.device_id)
                .values(running_version=release.version, installed_action_id=action.id)
            )
        rollout_id = action.rollout_id
        state = action.status
    ctx.changed([principal.device_id])
    ctx.metrics.feedback.labels(execution, state).inc()
    if rollout_id is not None and state in ("finished", "error", "canceled"):
        await rollouts.evaluate_soon(ctx, rollout_id)
    return web.Response(status=200)


async def deployment_feedback(request: web.Request) -> web.Response:
    return await _apply_feedback(request, cancel=False)


async def cancel_feedback(request: web.Request) -> web.Response:
    return await _apply_feedback(request, cancel=True)


async def cancel_action(request: web.Request) -> web.Response:
    ctx, principal = await _device(request)
    action_id = _int_param(request, "actionId")
    async with ctx.sessions() as session:
        action, _release = await _owned_action(session, principal, action_id)
    if action.status not in ("canceling", "canceled"):
        raise http_error(web.HTTPNotFound, "not-canceling", f"action {action_id} is not being canceled")
    return _json({"id": str(action.id), "cancelAction": {"stopId": str(action.id)}})


# --- configData ---------------------------------------------------------------------------------------------------


def _hardware(attributes: dict[str, str]) -> dict[str, Any]:
    """Device columns from the attributes a gateway reports (chip, board, versions)."""
    values: dict[str, Any] = {}
    chip = attributes.get("chip_id") or attributes.get("chip")
    if chip:
        try:
            values["chip_id"] = chip_id_from_name(chip)
        except ImageError as err:
            raise bad_request(f"attribute chip_id: {err}", "bad-attribute") from None
    board = attributes.get("board_id") or attributes.get("board")
    if board:
        try:
            values["board_id"] = int(board, 0)
        except ValueError:
            raise bad_request(f"attribute board_id must be a number, not {board[:40]!r}", "bad-attribute") from None
        if not 0 <= values["board_id"] <= 0xFFFF:
            raise bad_request("attribute board_id must fit 16 bits", "bad-attribute")
    version = attributes.get("running_version") or attributes.get("sw_version")
    if version:
        values["running_version"] = version[:64]
    return values


async def config_data(request: web.Request) -> web.Response:
    ctx, principal = await _device(request)
    data = await json_body(request)
    mode = optional(data, "mode", str, "merge")
    if mode not in ("merge", "replace", "remove"):
        raise bad_request("mode must be merge, replace or remove", "bad-field")
    attributes = field(data, "data", dict)
    if len(attributes) > MAX_ATTRIBUTES or not all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 128 and len(v) <= MAX_ATTRIBUTE_LENGTH
        for k, v in attributes.items()
    ):
        raise bad_request("data must map attribute names to strings (at most 200, 1024 characters each)", "bad-field")
    async with ctx.sessions.begin() as session:
        device = await session.get(Device, principal.device_id)
        assert device is not None
        current = dict(device.attributes or {})
        if mode == "replace":
            current = dict(attributes)
        elif mode == "merge":
            current.update(attributes)
        else:
            for key in attributes:
                current.pop(key, None)
        for key, value in _hardware(current).items():
            setattr(device, key, value)
        device.attributes = current
        device.request_attributes = False
    ctx.changed([principal.device_id])
    return web.Response(status=200)


# --- artifacts ----------------------------------------------------------------------------------------------------


async def _assigned_release(ctx: ServerContext, principal: DevicePrincipal, module_id: int) -> Release:
    async with ctx.sessions() as session:
        release = await session.get(Release, module_id)
        assigned = (
            await session.execute(
                select(func.count())
                .select_from(Action)
                .where(Action.device_id == principal.device_id, Action.release_id == module_id)
            )
        ).scalar_one()
    if release is None or not assigned or release.tenant != principal.tenant:
        raise http_error(web.HTTPNotFound, "unknown-module", f"software module {module_id} is not assigned here")
    return release


def _artifact_json(base: str, release: Release) -> dict[str, Any]:
    return _chunks(base, release)[0]["artifacts"][0]  # type: ignore[no-any-return]


async def list_artifacts(request: web.Request) -> web.Response:
    ctx, principal = await _device(request)
    release = await _assigned_release(ctx, principal, _int_param(request, "moduleId"))
    return _json([_artifact_json(_base(request, principal.tenant, principal.controller_id), release)])


async def download(request: web.Request) -> web.StreamResponse:
    ctx, principal = await _device(request)
    release = await _assigned_release(ctx, principal, _int_param(request, "moduleId"))
    name = request.match_info["filename"]
    if name == release.filename + ".MD5SUM":
        ctx.metrics.downloads.labels("md5sum").inc()
        return web.Response(text=f"{release.md5}  {release.filename}\n", content_type="text/plain")
    if name != release.filename:
        raise http_error(web.HTTPNotFound, "unknown-artifact", "no artifact of that name in this module")
    if ctx.settings.download_base_url:
        ctx.metrics.downloads.labels("redirect").inc()
        raise web.HTTPTemporaryRedirect(f"{ctx.settings.download_base_url.rstrip('/')}/{release.sha256}")
    path = artifact_path(ctx.settings.artifacts_dir, release.sha256)
    response, sent = await serve_bytes(
        request, path, size=release.size, sha1=release.sha1, modified=release.created_at, filename=release.filename
    )
    if response.status in (200, 206):
        ctx.metrics.downloads.labels("full" if response.status == 200 else "range").inc()
        ctx.metrics.download_bytes.inc(sent)
    return response


# --- our extensions: logs, gateway events --------------------------------------------------------------------


async def logs(request: web.Request) -> web.Response:
    ctx, principal = await _device(request)
    data = await json_body(request)
    lines = field(data, "lines", list)
    if len(lines) > MAX_LOG_LINES:
        raise bad_request(f"at most {MAX_LOG_LINES} lines per batch", "too-many-lines")
    rows: list[DeviceLog] = []
    for index, line in enumerate(lines):
        if not isinstance(line, dict):
            raise bad_request(f"lines[{index}] must be an object", "bad-field")
        where = f"lines[{index}]."
        message = field(line, "message", str, where)
        level = optional(line, "level", str, "info", where)
        time_text = optional(line, "time", str, "", where)
        action_id = optional(line, "actionId", int, 0, where)
        rows.append(
            DeviceLog(
                device_id=principal.device_id,
                action_id=action_id or None,
                level=level[:16],
                message=message[:MAX_LOG_LENGTH],
                device_time=time_text[:64] or None,
            )
        )
    async with ctx.sessions.begin() as session:
        session.add_all(rows)
    return _json({"stored": len(rows)})


async def gateway_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``event: poll`` with ``{"controllerId": ...}`` when a device should poll now.

    Changes made by this process arrive at once, other processes' through the change feed (about a second).
    """
    ctx = _ctx(request)
    tenant = _tenant(request)
    gateway_id = await authenticate_gateway(ctx, request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    queue = ctx.notifier.subscribe_gateway(gateway_id)
    try:
        await response.write(b"event: hello\ndata: {}\n\n")
        while True:
            try:
                async with asyncio.timeout(SSE_KEEPALIVE):
                    ids = {await queue.get()}
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            await asyncio.sleep(SSE_COALESCE)  # one event per device for a burst of changes
            while not queue.empty():
                ids.add(queue.get_nowait())
            async with ctx.sessions() as session:
                rows = await session.execute(
                    select(Device.controller_id).where(
                        Device.id.in_(ids), Device.gateway_id == gateway_id, Device.tenant == tenant
                    )
                )
                names = sorted(rows.scalars())
            for controller_id in names:
                payload = json.dumps({"controllerId": controller_id})
                await response.write(f"event: poll\ndata: {payload}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        ctx.notifier.unsubscribe_gateway(gateway_id, queue)
    return response


def add_routes(app: web.Application) -> None:
    base = "/{tenant}/controller/v1/{controllerId}"
    app.router.add_get(base, poll)
    app.router.add_get(base + "/deploymentBase/{actionId}", deployment_base)
    app.router.add_post(base + "/deploymentBase/{actionId}/feedback", deployment_feedback)
    app.router.add_get(base + "/cancelAction/{actionId}", cancel_action)
    app.router.add_post(base + "/cancelAction/{actionId}/feedback", cancel_feedback)
    app.router.add_put(base + "/configData", config_data)
    app.router.add_get(base + "/installedBase/{actionId}", installed_base)
    app.router.add_get(base + "/softwaremodules/{moduleId}/artifacts", list_artifacts)
    app.router.add_get(base + "/softwaremodules/{moduleId}/artifacts/{filename}", download)
    app.router.add_post(base + "/logs", logs)
    app.router.add_get("/{tenant}/gateway/v1/events", gateway_events)
