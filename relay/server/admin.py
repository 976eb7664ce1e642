"""The admin REST API under ``/api/v1`` (JSON; ``Authorization: Bearer <admin token>``).

Roles rise ``read-only`` < ``release-manager`` < ``admin``: reading needs read-only; releases, rollouts and
assignments need release-manager; devices and tokens need admin.  The route table is in :func:`add_routes`
and in ``docs/server.md``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from protocol.image import ImageError, chip_id_from_name

from . import rollouts
from .actions import check_maintenance
from .auth import ROLES, AdminPrincipal, authenticate_admin
from .context import CONTEXT, ServerContext
from .errors import http_error
from .models import (
    Action,
    ActionStatus,
    AdminToken,
    Device,
    DeviceLog,
    Gateway,
    GatewayToken,
    Release,
    Rollout,
    RolloutGroup,
    RolloutMember,
    utcnow,
)
from .releases import read_upload, store_release
from .storage import artifact_path
from .tokens import MAX_TOKEN_LENGTH, hash_token, new_token
from .validate import bad_request, check_controller_id, check_name, field, is_number, json_body, optional

__all__ = ["add_routes"]

_Row = TypeVar("_Row")
_Token = TypeVar("_Token", GatewayToken, AdminToken)

_FILENAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
_MIN_TOKEN_LENGTH = 16
DEFAULT_LIST_LIMIT = 1000
MAX_BULK_DEVICES = 10_000


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()


def _not_found(what: str) -> web.HTTPException:
    return http_error(web.HTTPNotFound, "not-found", f"no {what}")


async def _auth(request: web.Request, role: str) -> tuple[ServerContext, AdminPrincipal]:
    ctx = request.app[CONTEXT]
    return ctx, await authenticate_admin(ctx, request, role)


def _tenant(request: web.Request, ctx: ServerContext) -> str:
    tenant = request.query.get("tenant", ctx.settings.tenants[0])
    if tenant not in ctx.settings.tenants:
        raise http_error(web.HTTPNotFound, "unknown-tenant", f"no tenant {tenant[:64]!r} on this server")
    return tenant


def device_json(device: Device, gateway: str | None = None) -> dict[str, Any]:
    return {
        "controller_id": device.controller_id,
        "tenant": device.tenant,
        "name": device.name,
        "state": device.state,
        "gateway": gateway,
        "tags": device.tags,
        "attributes": device.attributes,
        "chip_id": device.chip_id,
        "board_id": device.board_id,
        "running_version": device.running_version,
        "created_at": _iso(device.created_at),
        "last_seen_at": _iso(device.last_seen_at),
    }


def release_json(release: Release) -> dict[str, Any]:
    return {
        "id": release.id,
        "tenant": release.tenant,
        "name": release.name,
        "version": release.version,
        "filename": release.filename,
        "size": release.size,
        "sha256": release.sha256,
        "sha1": release.sha1,
        "md5": release.md5,
        "chip_id": release.chip_id,
        "board_id": release.board_id,
        "security_counter": release.security_counter,
        "key_hash": release.key_hash,
        "signature_type": release.signature_type,
        "description": release.description,
        "created_at": _iso(release.created_at),
        "retired": release.retired_at is not None,
        "retired_at": _iso(release.retired_at),
    }


def action_json(action: Action, controller_id: str, version: str) -> dict[str, Any]:
    return {
        "id": action.id,
        "controller_id": controller_id,
        "release": version,
        "release_id": action.release_id,
        "rollout_id": action.rollout_id,
        "status": action.status,
        "active": action.active,
        "forced": action.forced,
        "download_only": action.download_only,
        "maintenance": action.maintenance,
        "progress": None if action.progress_cnt is None else {"cnt": action.progress_cnt, "of": action.progress_of},
        "code": action.last_code,
        "created_at": _iso(action.created_at),
        "updated_at": _iso(action.updated_at),
    }


def _path_id(request: web.Request, key: str, noun: str) -> int:
    """The number the path's ``{key}`` holds, or a 400 ("action id must be a number")."""
    text = request.match_info[key]
    if not is_number(text):
        raise bad_request(f"{noun} id must be a number", "bad-id")
    return int(text)


async def _by_path_id(session: Any, request: web.Request, model: type[_Row], key: str, *, noun: str, what: str) -> _Row:
    """The ``model`` row whose id the path's ``{key}`` holds, or a 400 (not a number) or a 404 ("no {what} 7")."""
    row: _Row | None = await session.get(model, _path_id(request, key, noun))
    if row is None:
        raise _not_found(f"{what} {request.match_info[key]}")
    return row


def _limit(request: web.Request) -> int:
    text = request.query.get("limit", str(DEFAULT_LIST_LIMIT))
    if not is_number(text) or not 0 < int(text) <= 100_000:
        raise bad_request("limit must be a number from 1 to 100000", "bad-limit")
    return int(text)


# --- devices ------------------------------------------------------------------------------------------------------


async def _device_by_cid(session: Any, tenant: str, controller_id: str) -> Device:
    check_controller_id(controller_id)
    device = (
        await session.execute(select(Device).where(Device.tenant == tenant, Device.controller_id == controller_id))
    ).scalar_one_or_none()
    if device is None:
        raise _not_found(f"device {controller_id!r}")
    return device  # type: ignore[no-any-return]


def _check_tags(tags: list[Any]) -> list[str]:
    if not all(isinstance(t, str) and t for t in tags):
        raise bad_request("tags must be a list of non-empty strings", "bad-field")
    return tags


def _chip_id(name: str, where: str = "chip") -> int:
    """The DEV_ID a chip name stands for ("F407", "0x413"), or a 400 that says which field was wrong."""
    try:
        return chip_id_from_name(name)
    except ImageError as err:
        raise bad_request(f"{where}: {err}", "bad-field") from None


def _token_from(data: dict[str, Any]) -> str:
    token = optional(data, "token", str, "")
    if token and not _MIN_TOKEN_LENGTH <= len(token) <= MAX_TOKEN_LENGTH:
        raise bad_request(f"token must have {_MIN_TOKEN_LENGTH} to {MAX_TOKEN_LENGTH} characters", "bad-token")
    if (token and not token.isprintable()) or " " in token:
        raise bad_request("token must be printable, without spaces", "bad-token")
    return token or new_token()


async def _change_device(
    ctx: ServerContext, request: web.Request, tenant: str, change: Callable[[Device], None]
) -> web.Response:
    """Apply ``change`` to the device the path's ``{controllerId}`` names, in one transaction (it may raise an
    HTTP error, which changes nothing), tell the poll waiters it changed, and answer with the device."""
    async with ctx.sessions.begin() as session:
        device = await _device_by_cid(session, tenant, request.match_info["controllerId"])
        change(device)
    ctx.changed([device.id])
    return web.json_response(device_json(device))


async def list_devices(request: web.Request) -> web.Response:
    ctx, _ = await _auth(request, "read-only")
    tenant = _tenant(request, ctx)
    query = (
        select(Device, Gateway.name).outerjoin(Gateway, Gateway.id == Device.gateway_id).where(Device.tenant == tenant)
    )
    state = request.query.get("state")
    if state:
        query = query.where(Device.state == state)
    async with ctx.sessions() as session:
        rows = (await session.execute(query.order_by(Device.id).limit(_limit(request)))).all()
    return web.json_response([device_json(d, g) for d, g in rows])


def _new_device(tenant: str, data: dict[str, Any]) -> tuple[Device, str]:
    controller_id = check_controller_id(field(data, "controller_id", str))
    token = _token_from(data)
    tags = _check_tags(optional(data, "tags", list, []))
    device = Device(
        tenant=tenant,
        controller_id=controller_id,
        name=optional(data, "name", str, "")[:128],
        state="active",
        token_hash=hash_token(token),
        tags=tags,
        attributes={},
    )
    chip = optional(data, "chip", str, "")
    if chip:
        device.chip_id = _chip_id(chip)
    board = optional(data, "board", int, -1)
    if board > 0xFFFF:
        raise bad_request("board must fit 16 bits", "bad-field")
    if board >= 0:
        device.board_id = board
    return device, token


async def add_device(request: web.Request) -> web.Response:
    ctx, _ = await _auth(request, "admin")
    tenant = _tenant(request, ctx)
    device, token = _new_device(tenant, await json_body(request))
    try:
        async with ctx.sessions.begin() as session:
            session.add(device)
    except IntegrityError:
        raise http_error(web.HTTPConflict, "exists", f"device {device.controller_id!r} already exists") from None
    return web.json_response({**device_json(device), "token": token}, status=201)


async def add_devices(request: web.Request) -> web.Response:
    """Many devices in one transaction (all or none): ``{"devices": [{...}, ...]}``."""
    ctx, _ = await _auth(request, "admin")
    tenant = _tenant(request, ctx)
    entries = field(await json_body(request), "devices", list)
    if not 0 < len(entries) <= MAX_BULK_DEVICES:
        raise bad_request(f"devices must list 1 to {MAX_BULK_DEVICES} devices", "bad-field")
    created = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise bad_request(f"devices[{index}] must be an object", "bad-field")
        created.append(_new_device(tenant, entry))
    if len({d.controller_id for d, _ in created}) != len(created):
        raise bad_request("devices lists a controllerId twice", "bad-field")
    try:
        async with ctx.sessions.begin() as session:
            session.add_all(d for d, _ in created)
    except IntegrityError:
        raise http_error(web.HTTPConflict, "exists", "one of the devices already exists; none was added") from None
    return web.json_response(
        {"devices": [{"controller_id": d.controller_id, "token": t} for d, t in created]}, status=201
    )


async def update_device(request: web.Request) -> web.Response:
    """Change a device's name, tags, chip or board (``{"name"?, "tags"?, "chip"?, "board"?}``)."""
    ctx, _ = await _auth(request, "admin")
    tenant = _tenant(request, ctx)
    data = await json_body(request)
    unknown = set(data) - {"name", "tags", "chip", "board"}
    if unknown:
        raise bad_request(f"unknown field(s) {', '.join(sorted(unknown))}: name, tags, chip, board", "bad-field")

    def change(device: Device) -> None:
        if "name" in data:
            device.name = field(data, "name", str)[:128]
        if "tags" in data:
            device.tags = _check_tags(field(data, "tags", list))
        if "chip" in data:
            device.chip_id = _chip_id(field(data, "chip", str))
        if "board" in data:
            board = field(data, "board", int)
            if not 0 <= board <= 0xFFFF:
                raise bad_request("board must fit 16 bits", "bad-field")
            device.board_id = board

    return await _change_device(ctx, request, tenant, change)


async def request_attributes(request: web.Request) -> web.Response:
    """Ask the device for its attributes again (the poll links configData until it sends them)."""
    ctx, _ = await _auth(request, "admin")

    def change(device: Device) -> None:
        device.request_attributes = True

    return await _change_device(ctx, request, _tenant(request, ctx), change)


async def show_device(request: web.Request) -> web.Response:
    ctx, _ = await _auth(request, "read-only")
    tenant = _tenant(request, ctx)
    async with ctx.sessions() as session:
        device = await _device_by_cid(session, tenant, request.match_info["controllerId"])
        gateway = await session.get(Gateway, device.gateway_id) if device.gateway_id else None
        rows = (
            await session.execute(
                select(Action, Release.version)
                .join(Release, Release.id == Action.release_id)
                .where(Action.device_id == device.id)
                .order_by(Action.id.desc())
                .limit(50)
            )
        ).all()
    body = device_json(device, gateway.name if gateway else None)
    body["actions"] = [action_json(a, device.controller_id, v) for a, v in rows]
    return web.json_response(body)


async def accept_device(request: web.Request) -> web.Response:
    ctx, _ = await _auth(request, "admin")

    def change(device: Device) -> None:
        if device.state != "pending":
            raise http_error(web.HTTPConflict, "not-pending", f"device {device.controller_id!r} is {device.state}")
        device.state = "active"

    return await _change_device(ctx, request, _tenant(request, ctx), change)


async def device_token(request: web.Request) -> web.Response:
    """A new TargetToken for the device (the old one stops working)."""
    ctx, _ = await _auth(request, "admin")
    tenant = _tenant(request, ctx)
    data = await json_body(request) if request.can_read_body else {}
    token = _token_from(data)
    async with ctx.sessions.begin() as session:
        device = await _device_by_cid(session, tenant, request.match_info["controllerId"])
        device.token_hash = hash_token(token)
    ctx.changed([device.id])
    return web.json_response({"controller_id": device.controller_id, "token": token})


async def delete_device(request: web.Request) -> web.Response:
    ctx, _ = await _auth(request, "admin")
    tenant = _tenant(request, ctx)
    async with ctx.sessions.begin() as session:
        device = await _device_by_cid(session, tenant, request.match_info["controllerId"])
        for table in (DeviceLog, RolloutMember):
            await session.execute(delete(table).where(table.device_id == device.id))
        action_ids = select(Action.id).where(Action.device_id == device.id).scalar_subquery()
        await session.execute(delete(ActionStatus).where(ActionStatus.action_id.in_(action_ids)))
        await session.execute(delete(Action).where(Action.device_id == device.id))
        await session.delete(device)
    ctx.changed([device.id])
    return web.Response(status=204)


async def device_logs(request: web.Request) -> web.Response:
    ctx, _ = await _auth(request, "read-only")
    tenant = _tenant(request, ctx)
    async with ctx.sessions() as session:
        device = await _device_by_cid(session, tenant, request.match_info["controllerId"])
        rows = (
            (
                await session.execute(
                    select(DeviceLog)
                    .where(DeviceLog.device_id == device.id)
                    .order_by(DeviceLog.id.desc())
                    .limit(_limit(request))
                )
            )
            .scalars()
            .all()
        )
    return web.json_response(
        [
            {
                "time": r.device_time,
                "received_at": _iso(r.created_at),
                "level": r.level,
                "message": r.message,
                "action_id": r.action_id,
            }
            for r in reversed(rows)
        ]
    )


# --- releases -----------------------------------------------------------------------------------------------------


async def _release(session: Any, tenant: str, key: str) -> Release:
    query = select(Release).where(Release.tenant == tenant)
    query = query.where(Release.id == int(key)) if is_number(key) else query.where(Release.version == key)
    release = (await session.execute(query)).scalar_one_or_none()
    if release is None:
        raise _not_found(f"release {key[:64]!r}")
    return release  # type: ignore[no-any-return]


def _check_filename(filename: str) -> None:
    if filename and (not _FILENAME_RE.match(filename) or filename.endswith(".MD5SUM")):
        raise bad_request(f"invalid filename {filename[:80]!r}: letters, digits, '.', '_', '+', '-'", "bad-filename")


async def upload_release(request: web.Request) -> web.Response:
    ctx, _ = await _auth(request, "release-manager")
    tenant = _tenant(request, ctx)
    filename = request.query.get("filename", "")
    _check_filename(filename)
    name = request.query.get("name", "")
    if name:
        check_name(name, "release name")
    description = request.query.get("description", "")[:2000]
    data, form_filename = await read_upload(request, ctx.settings.max_release_size)
    if not filename and form_filename:
        filename = form_filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
        _check_filename(filename)
    async with ctx.sessions.begin() as session:
        release = await store_release(ctx, session, tenant, data, name=name, filename=filename, description=description)
    return web.json_response(release_json(release), status=201)


async def list_releases(request: web.Request) -> web.Response:
    ctx, _ = await _auth(request, "read-only")
    tenant = _tenant(request, ctx)
    async with ctx.sessions() as session:
        rows = (
            (await session.execute(select(Release).where(Release.tenant == tenant).order_by(Release.id)))
            .scalars()
            .all()
        )
    return web.json_response([release_json(r) for r in rows])


async def show_release(request: web.Request) -> web.Response:
    ctx, _ = await _auth(request, "read-only")
    async with ctx.sessions() as session:
        release = await _release(session, _tenant(request, ctx), request.match_info["release"])
    return web.json_response(release_json(release))


async def release_image(request: web.Request) -> web.StreamResponse:
    ctx, _ = await _auth(request, "read-only")
    async with ctx.sessions() as session:
        release = await _release(session, _tenant(request, ctx), request.match_info["release"])
    return web.FileResponse(
        artifact_path(ctx.settings.artifacts_dir, release.sha256),
        headers={"Content-Disposition": f'attachment; filename="{release.filename}"'},
    )


async def retire_release(request: web.Request) -> web.Response:
    """Never offered again: rollouts of it stop; actions not yet started are canceled, running ones finish."""
    ctx, _ = await _auth(request, "release-manager")
    async with ctx.sessions.begin() as session:
        release = await _release(session, _tenant(request, ctx), request.match_info["release"])
        if release.retired_at is None:
            release.retired_at = utcnow()
        stopped = (
            (
                await session.execute(
                    select(Rollout).where(Rollout.release_id == release.id, Rollout.status.in_(("running", "paused")))
                )
            )
            .scalars()
            .all()
        )
        for rollout in stopped:
            rollout.status = "canceled"
            rollout.pause_reason = "release retired"
        device_ids = await rollouts.cancel_actions(
            session, (Action.release_id == release.id) & (Action.status == "scheduled"), "release retired"
        )
    ctx.changed(device_ids)
    return web.json_response(release_json(release))


# --- actions (direct assignment) -------------------------------------------------------------------------------


async def assign_release(request: web.Request) -> web.Response:
    ctx, _ = await _auth(request, "release-manager")
    tenant = _tenant(request, ctx)
    data = await json_body(request)
    controller_id = field(data, "controller_id", str)
    release_key = field(data, "release", str)
    forced = optional(data, "forced", bool, False)
    download_only = optional(data, "download_only", bool, False)
    maintenance = check_maintenance(data.get("maintenance"))
    async with ctx.sessions.begin() as session:
        device = await _device_by_cid(session, tenant, controller_id)
        release = await _release(session, tenant, release_key)
        if release.retired_at is not None:
            raise http_error(web.HTTPConflict, "retired", f"release {release.version} is retired")
        if device.state != "active":
            raise http_error(web.HTTPConflict, "not-accepted", f"device {controller_id!r} is not accepted yet")
        reason = rollouts.hardware_mismatch(release, device)
        if reason is not None:
            raise http_error(web.HTTPConflict, reason, f"release {release.version} does not fit this device: {reason}")
        open_actions = (
            await session.execute(
                select(func.count()).select_from(Action).where(Action.device_id == device.id, Action.active.is_(True))
            )
        ).scalar_one()
        if open_actions:
            raise http_error(web.HTTPConflict, "busy", f"device {controller_id!r} has an open action; cancel it first")
        action = await rollouts.assign(
            session, device, release, forced=forced, download_only=download_only, maintenance=maintenance
        )
    ctx.changed([device.id], {device.id: device.gateway_id})
    return web.json_response(action_json(action, device.controller_id, release.version), status=201)


async def cancel_action(request: web.Request) -> web.Response:
    ctx, _ = await _auth(request, "release-manager")
    async with ctx.sessions.begin() as session:
        action = await _by_path_id(session, request, Action, "actionId", noun="action", what="action")
        if not action.active:
            raise http_error(
                web.HTTPConflict, "closed", f"action {request.match_info['actionId']} is already {action.status}"
            )
        devices = await rollouts.cancel_actions(session, Action.id == action.id, "canceled by an operator")
    ctx.changed(devices)
    return web.json_response({"id": action.id, "status": "canceling"})


# --- rollouts -----------------------------------------------------------------------------------------------------


def _percent(data: dict[str, Any], name: str, default: int | None) -> int | None:
    value = optional(data, name, int, default)
    if value is not None and not 0 <= value <= 100:
        raise bad_request(f"{name} must be a percentage (0..100)", "bad-field")
    return value


async def create_rollout(request: web.Request) -> web.Response:
    ctx, _ = await _auth(request, "release-manager")
    tenant = _tenant(request, ctx)
    data = await json_body(request)
    release_key = field(data, "release", str)
    flt = optional(data, "filter", dict, {})
    unknown = set(flt) - {"chip", "board", "tags", "devices"}
    if unknown:
        raise bad_request(
            f"unknown filter key(s) {', '.join(sorted(unknown))}: use chip, board, tags, devices", "bad-field"
        )
    if "chip" in flt:
        _chip_id(str(flt["chip"]), "filter.chip")
    if "board" in flt:
        field(flt, "board", int, "filter.")
    for key in ("tags", "devices"):
        if key in flt and not (isinstance(flt[key], list) and all(isinstance(x, str) for x in flt[key])):
            raise bad_request(f"filter.{key} must be a list of strings", "bad-field")
    canary = optional(data, "canary", int, 1)
    percentages = optional(data, "percentages", list, [100])
    if not all(isinstance(p, int) and not isinstance(p, bool) for p in percentages):
        raise bad_request("percentages must be a list of integers", "bad-field")
    maintenance = check_maintenance(data.get("maintenance"))
    success = _percent(data, "success_threshold", 100)
    error_pct = _percent(data, "error_threshold_percent", None)
    error_count = optional(data, "error_threshold_count", int, None)
    if error_count is not None and error_count < 1:
        raise bad_request("error_threshold_count must be at least 1", "bad-field")
    name = optional(data, "name", str, "")[:128]
    async with ctx.sessions.begin() as session:
        release = await _release(session, tenant, release_key)
        if release.retired_at is not None:
            raise http_error(web.HTTPConflict, "retired", f"release {release.version} is retired")
        devices = await rollouts.match_devices(session, tenant, flt)
        if not devices:
            raise http_error(web.HTTPConflict, "no-devices", "the filter selects no accepted device")
        try:
            sizes = rollouts.plan_groups(len(devices), canary, percentages)
        except rollouts.RolloutError as err:
            raise bad_request(str(err), "bad-field") from None
        rollout = Rollout(
            tenant=tenant,
            name=name or f"{release.version} rollout",
            release_id=release.id,
            status="running",
            forced=optional(data, "forced", bool, False),
            download_only=optional(data, "download_only", bool, False),
            success_threshold=success,
            error_threshold_count=error_count,
            error_threshold_percent=error_pct,
            maintenance=maintenance,
            filter=flt,
        )
        session.add(rollout)
        await session.flush()
        start = 0
        for position, size in enumerate(sizes):
            label = "canary" if position == 0 and canary else f"group-{position + (0 if canary else 1)}"
            group = RolloutGroup(rollout_id=rollout.id, position=position, name=label, status="scheduled")
            session.add(group)
            await session.flush()
            session.add_all(RolloutMember(group_id=group.id, device_id=d.id) for d in devices[start : start + size])
            start += size
    await rollouts.evaluate_soon(ctx, rollout.id)
    return await _rollout_response(ctx, rollout.id, status=201)


async def _rollout_response(ctx: ServerContext, rollout_id: int, status: int = 200) -> web.Response:
    async with ctx.sessions() as session:
        rollout = await session.get(Rollout, rollout_id)
        if rollout is None:
            raise _not_found(f"rollout {rollout_id}")
        body = await rollouts.status(session, rollout)
    return web.json_response(body, status=status)


def _rollout_id(request: web.Request) -> int:
    return _path_id(request, "rolloutId", "rollout")


async def list_rollouts(request: web.Request) -> web.Response:
    ctx, _ = await _auth(request, "read-only")
    tenant = _tenant(request, ctx)
    async with ctx.sessions() as session:
        rows = (
            await session.execute(
                select(Rollout, Release.version)
                .join(Release, Release.id == Rollout.release_id)
                .where(Rollout.tenant == tenant)
                .order_by(Rollout.id)
            )
        ).all()
    return web.json_response(
        [
            {"id": r.id, "name": r.name, "release": v, "status": r.status, "pause_reason": r.pause_reason or None}
            for r, v in rows
        ]
    )


async def show_rollout(request: web.Request) -> web.Response:
    ctx, _ = await _auth(request, "read-only")
    return await _rollout_response(ctx, _rollout_id(request))


async def _rollout_op(request: web.Request, op: str) -> web.Response:
    ctx, _ = await _auth(request, "release-manager")
    rollout_id = _rollout_id(request)
    operation = {"pause": rollouts.pause, "resume": rollouts.resume, "cancel": rollouts.cancel}[op]
    try:
        await operation(ctx, rollout_id)
    except LookupError:
        raise _not_found(f"rollout {rollout_id}") from None
    except rollouts.RolloutError as err:
        raise http_error(web.HTTPConflict, "wrong-state", str(err)) from None
    return await _rollout_response(ctx, rollout_id)


async def pause_rollout(request: web.Request) -> web.Response:
    return await _rollout_op(request, "pause")


async def resume_rollout(request: web.Request) -> web.Response:
    return await _rollout_op(request, "resume")


async def cancel_rollout(request: web.Request) -> web.Response:
    return await _rollout_op(request, "cancel")


# --- gateway tokens and admin tokens ---------------------------------------------------------------------------


async def create_gateway_token(request: web.Request) -> web.Response:
    ctx, _ = await _auth(request, "admin")
    tenant = _tenant(request, ctx)
    data = await json_body(request)
    name = check_name(field(data, "gateway", str), "gateway name")
    label = optional(data, "label", str, "")[:128]
    can_register = optional(data, "can_register", bool, True)
    token = _token_from(data)
    async with ctx.sessions.begin() as session:
        gateway = (
            await session.execute(select(Gateway).where(Gateway.tenant == tenant, Gateway.name == name))
        ).scalar_one_or_none()
        if gateway is None:
            gateway = Gateway(tenant=tenant, name=name)
            session.add(gateway)
            await session.flush()
        row = GatewayToken(gateway_id=gateway.id, token_hash=hash_token(token), label=label, can_register=can_register)
        session.add(row)
        await session.flush()
        # Devices named at creation are bound to this gateway (pre-registration through a gateway).
        bound: list[int] = []
        for controller_id in optional(data, "devices", list, []):
            if not isinstance(controller_id, str):
                raise bad_request("devices must be a list of controllerIds", "bad-field")
            device = await _device_by_cid(session, tenant, controller_id)
            device.gateway_id = gateway.id
            bound.append(device.id)
    ctx.invalidate_credentials()
    ctx.changed(bound)
    return web.json_response(
        {"id": row.id, "gateway": name, "label": label, "can_register": can_register, "token": token}, status=201
    )


async def list_gateway_tokens(request: web.Request) -> web.Response:
    ctx, _ = await _auth(request, "read-only")
    tenant = _tenant(request, ctx)
    async with ctx.sessions() as session:
        rows = (
            await session.execute(
                select(GatewayToken, Gateway.name)
                .join(Gateway, Gateway.id == GatewayToken.gateway_id)
                .where(Gateway.tenant == tenant)
                .order_by(GatewayToken.id)
            )
        ).all()
    return web.json_response(
        [
            {
                "id": t.id,
                "gateway": g,
                "label": t.label,
                "can_register": t.can_register,
                "created_at": _iso(t.created_at),
                "revoked": t.revoked_at is not None,
            }
            for t, g in rows
        ]
    )


async def _revoke_token(ctx: ServerContext, request: web.Request, model: type[_Token], what: str) -> _Token:
    """Revoke the token the path's ``{tokenId}`` names (once: a second revoke keeps the first time) and make
    every credential cache forget it."""
    async with ctx.sessions.begin() as session:
        row = await _by_path_id(session, request, model, "tokenId", noun="token", what=what)
        row.revoked_at = row.revoked_at or utcnow()
    ctx.invalidate_credentials()
    return row


async def revoke_gateway_token(request: web.Request) -> web.Response:
    ctx, _ = await _auth(request, "admin")
    row = await _revoke_token(ctx, request, GatewayToken, "gateway token")
    return web.json_response({"id": row.id, "revoked": True})


async def create_admin_token(request: web.Request) -> web.Response:
    ctx, _ = await _auth(request, "admin")
    data = await json_body(request)
    role = field(data, "role", str)
    if role not in ROLES:
        raise bad_request(f"role must be one of {', '.join(ROLES)}", "bad-field")
    name = optional(data, "name", str, role)[:100]
    token = new_token()
    async with ctx.sessions.begin() as session:
        row = AdminToken(name=name, role=role, token_hash=hash_token(token))
        session.add(row)
    return web.json_response({"id": row.id, "name": name, "role": role, "token": token}, status=201)


async def list_admin_tokens(request: web.Request) -> web.Response:
    ctx, _ = await _auth(request, "admin")
    async with ctx.sessions() as session:
        rows = (await session.execute(select(AdminToken).order_by(AdminToken.id))).scalars().all()
    return web.json_response(
        [
            {
                "id": r.id,
                "name": r.name,
                "role": r.role,
                "created_at": _iso(r.created_at),
                "revoked": r.revoked_at is not None,
            }
            for r in rows
        ]
    )


async def revoke_admin_token(request: web.Request) -> web.Response:
    ctx, principal = await _auth(request, "admin")
    row = await _revoke_token(ctx, request, AdminToken, "admin token")
    return web.json_response({"id": row.id, "revoked": True, "self": row.id == principal.token_id})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/devices", list_devices)
    r.add_post("/api/v1/devices", add_device)
    r.add_post("/api/v1/devices/bulk", add_devices)
    r.add_get("/api/v1/devices/{controllerId}", show_device)
    r.add_post("/api/v1/devices/{controllerId}/request-attributes", request_attributes)
    r.add_delete("/api/v1/devices/{controllerId}", delete_device)
    r.add_patch("/api/v1/devices/{controllerId}", update_device)
    r.add_post("/api/v1/devices/{controllerId}/accept", accept_device)
    r.add_post("/api/v1/devices/{controllerId}/token", device_token)
    r.add_get("/api/v1/devices/{controllerId}/logs", device_logs)
    r.add_get("/api/v1/releases", list_releases)
    r.add_post("/api/v1/releases", upload_release)
    r.add_get("/api/v1/releases/{release}", show_release)
    r.add_get("/api/v1/releases/{release}/image", release_image)
    r.add_post("/api/v1/releases/{release}/retire", retire_release)
    r.add_post("/api/v1/actions", assign_release)
    r.add_post("/api/v1/actions/{actionId}/cancel", cancel_action)
    r.add_get("/api/v1/rollouts", list_rollouts)
    r.add_post("/api/v1/rollouts", create_rollout)
    r.add_get("/api/v1/rollouts/{rolloutId}", show_rollout)
    r.add_post("/api/v1/rollouts/{rolloutId}/pause", pause_rollout)
    r.add_post("/api/v1/rollouts/{rolloutId}/resume", resume_rollout)
    r.add_post("/api/v1/rollouts/{rolloutId}/cancel", cancel_rollout)
    r.add_get("/api/v1/gateway-tokens", list_gateway_tokens)
    r.add_post("/api/v1/gateway-tokens", create_gateway_token)
    r.add_delete("/api/v1/gateway-tokens/{tokenId}", revoke_gateway_token)
    r.add_get("/api/v1/admin-tokens", list_admin_tokens)
    r.add_post("/api/v1/admin-tokens", create_admin_token)
    r.add_delete("/api/v1/admin-tokens/{tokenId}", revoke_admin_token)
