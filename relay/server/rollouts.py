"""Staged rollouts: a release to a filtered set of devices, in groups, stopping by itself when failures pile up.

Groups: a canary group of ``canary`` devices, then groups reaching the cumulative ``percentages`` of the rest
(``[25, 100]``: a quarter, then everything left).  A group starts when the one before it reaches the
``success_threshold`` (percent of its devices finished successfully).  A group whose new errors reach
``error_threshold_count`` or ``error_threshold_percent`` pauses the whole rollout (AWS IoT Jobs' abort
criteria); so does a group that ends below the success threshold.  Resuming counts only errors after it.

Every change happens under the rollout's row lock (``SELECT ... FOR UPDATE`` on PostgreSQL, plus a per-process
lock), and a group starts with a compare-and-set on its status, so two server processes advancing the same
rollout never assign a device twice.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.image import chip_id_from_name

from .context import ServerContext
from .models import Action, ActionStatus, Device, Release, Rollout, RolloutGroup, RolloutMember, utcnow

__all__ = [
    "assign",
    "cancel",
    "evaluate",
    "evaluate_soon",
    "hardware_mismatch",
    "match_devices",
    "pause",
    "plan_groups",
    "resume",
    "status",
    "tick",
]

log = logging.getLogger(__name__)


class RolloutError(ValueError):
    """A rollout request that cannot be carried out (bad plan, wrong state); the message says why."""


def hardware_mismatch(release: Release, device: Device) -> str | None:
    """Why ``release`` must not be offered to ``device`` (its hardware tag), or ``None`` when it fits."""
    if release.chip_id is None:
        return None
    if device.chip_id is None:
        return "unknown-chip"
    if device.chip_id != release.chip_id:
        return "wrong-chip"
    if release.board_id and device.board_id != release.board_id:
        return "wrong-board"
    return None


def plan_groups(count: int, canary: int, percentages: Sequence[int]) -> list[int]:
    """Group sizes for ``count`` devices: the canary, then cumulative percentages of the rest."""
    if canary < 0:
        raise RolloutError("canary must not be negative")
    if (
        not percentages
        or any(not 0 < p <= 100 for p in percentages)
        or list(percentages) != sorted(percentages)
        or percentages[-1] != 100
    ):
        raise RolloutError("percentages must rise from 1 to 100, e.g. [25, 50, 100]")
    sizes = []
    first = min(canary, count)
    if first:
        sizes.append(first)
    rest = count - first
    taken = 0
    for index, pct in enumerate(percentages):
        upto = rest if index == len(percentages) - 1 else min(rest, math.ceil(rest * pct / 100))
        if upto > taken:
            sizes.append(upto - taken)
            taken = upto
    return sizes


def _matches(device: Device, flt: dict[str, Any]) -> bool:
    if "chip" in flt and device.chip_id != chip_id_from_name(str(flt["chip"])):
        return False
    if "board" in flt and device.board_id != int(flt["board"]):
        return False
    if "tags" in flt and not set(flt["tags"]) <= set(device.tags or []):
        return False
    return not ("devices" in flt and device.controller_id not in flt["devices"])


async def match_devices(session: AsyncSession, tenant: str, flt: dict[str, Any]) -> list[Device]:
    """Accepted devices of ``tenant`` that the filter selects, in registration order."""
    rows = await session.execute(
        select(Device).where(Device.tenant == tenant, Device.state == "active").order_by(Device.id)
    )
    return [d for d in rows.scalars() if _matches(d, flt)]


async def assign(
    session: AsyncSession,
    device: Device,
    release: Release,
    *,
    forced: bool,
    download_only: bool = False,
    maintenance: dict[str, Any] | None = None,
    rollout_id: int | None = None,
    group_id: int | None = None,
    note: str = "assigned",
) -> Action:
    now = utcnow()
    action = Action(
        device_id=device.id,
        release_id=release.id,
        rollout_id=rollout_id,
        group_id=group_id,
        forced=forced,
        download_only=download_only,
        maintenance=maintenance,
        created_at=now,
        updated_at=now,
        status="scheduled",
        active=True,
    )
    session.add(action)
    await session.flush()
    session.add(ActionStatus(action_id=action.id, status="scheduled", messages=[note], created_at=now))
    return action


async def _busy(session: AsyncSession, device_ids: Sequence[int]) -> set[int]:
    if not device_ids:
        return set()
    rows = await session.execute(
        select(Action.device_id).where(Action.device_id.in_(device_ids), Action.active.is_(True)).distinct()
    )
    return set(rows.scalars())


async def _start_group(session: AsyncSession, rollout: Rollout, group: RolloutGroup, release: Release) -> list[int]:
    """Assign the release to the group's devices (the compare-and-set makes this happen once); the device ids."""
    claimed = await session.execute(
        update(RolloutGroup)
        .where(RolloutGroup.id == group.id, RolloutGroup.status == "scheduled")
        .values(status="running")
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        await session.refresh(group)
        return []
    group.status = "running"
    rows = (
        await session.execute(
            select(RolloutMember, Device)
            .join(Device, Device.id == RolloutMember.device_id)
            .where(RolloutMember.group_id == group.id)
            .order_by(RolloutMember.id)
        )
    ).all()
    busy = await _busy(session, [device.id for _member, device in rows])
    started: list[int] = []
    for member, device in rows:
        reason = hardware_mismatch(release, device)
        if reason is None and device.state != "active":
            reason = "not-accepted"
        if reason is None and release.retired_at is not None:
            reason = "release-retired"
        if reason is None and device.running_version == release.version:
            reason = "up-to-date"
        if reason is None and device.id in busy:
            reason = "busy"
        if reason is not None:
            member.skipped = reason
            continue
        action = await assign(
            session,
            device,
            release,
            forced=rollout.forced,
            download_only=rollout.download_only,
            maintenance=rollout.maintenance,
            rollout_id=rollout.id,
            group_id=group.id,
            note=f"rollout {rollout.name!r}, group {group.name}",
        )
        member.action_id = action.id
        started.append(device.id)
    log.info("rollout %s: group %s started with %d devices", rollout.id, group.name, len(started))
    return started


async def _group_counts(session: AsyncSession, group_id: int) -> dict[str, int]:
    rows = await session.execute(
        select(Action.status, func.count()).where(Action.group_id == group_id).group_by(Action.status)
    )
    counts = {status: n for status, n in rows.all()}
    total = (
        await session.execute(
            select(func.count())
            .select_from(RolloutMember)
            .where(RolloutMember.group_id == group_id, RolloutMember.skipped.is_(None))
        )
    ).scalar_one()
    active = sum(n for s, n in counts.items() if s not in ("finished", "error", "canceled"))
    return {
        "total": total,
        "finished": counts.get("finished", 0),
        "error": counts.get("error", 0),
        "canceled": counts.get("canceled", 0),
        "active": active,
    }


async def _locked(session: AsyncSession, rollout_id: int) -> Rollout | None:
    return (
        await session.execute(select(Rollout).where(Rollout.id == rollout_id).with_for_update())
    ).scalar_one_or_none()


async def _operated(session: AsyncSession, rollout_id: int) -> Rollout:
    """The rollout an operator pauses, resumes or cancels, locked; :class:`LookupError` (the API's 404) when
    there is none."""
    rollout = await _locked(session, rollout_id)
    if rollout is None:
        raise LookupError(rollout_id)
    return rollout


def _pause(rollout: Rollout, reason: str) -> None:
    rollout.status = "paused"
    rollout.pause_reason = reason
    log.warning("rollout %s paused: %s", rollout.id, reason)


async def evaluate(ctx: ServerContext, rollout_id: int) -> None:
    """Advance one rollout: start the next group, pause on failures, finish."""
    notify: list[int] = []
    async with ctx.rollout_lock(rollout_id), ctx.sessions.begin() as session:
        rollout = await _locked(session, rollout_id)
        if rollout is None or rollout.status != "running":
            return
        release = await session.get(Release, rollout.release_id)
        assert release is not None
        groups = (
            (
                await session.execute(
                    select(RolloutGroup).where(RolloutGroup.rollout_id == rollout.id).order_by(RolloutGroup.position)
                )
            )
            .scalars()
            .all()
        )
        previous_reached = True
        for group in groups:
            if group.status == "scheduled":
                if not previous_reached:
                    break
                notify.extend(await _start_group(session, rollout, group, release))
            if group.status == "running":
                counts = await _group_counts(session, group.id)
                total = counts["total"]
                errors = counts["error"] - group.error_baseline
                if rollout.error_threshold_count is not None and errors >= rollout.error_threshold_count > 0:
                    _pause(rollout, f"group {group.name}: {errors} failed (threshold {rollout.error_threshold_count})")
                    break
                pct = rollout.error_threshold_percent
                if pct is not None and total and errors > 0 and errors * 100 >= pct * total:
                    _pause(rollout, f"group {group.name}: {errors} of {total} failed (threshold {pct}%)")
                    break
                reached = total == 0 or counts["finished"] * 100 >= rollout.success_threshold * total
                if counts["active"] == 0:
                    group.status = "finished"
                    if not reached:
                        _pause(
                            rollout,
                            f"group {group.name} ended with {counts['finished']} of {total} updated,"
                            f" below the success threshold of {rollout.success_threshold}%",
                        )
                        break
                previous_reached = reached
                if not reached:
                    break
            elif group.status == "finished":
                previous_reached = True
        if rollout.status == "running" and all(g.status == "finished" for g in groups):
            rollout.status = "finished"
            log.info("rollout %s finished", rollout.id)
        rollout.revision += 1
        rollout.updated_at = utcnow()
    if notify:
        await _notify(ctx, notify)


async def _notify(ctx: ServerContext, device_ids: Sequence[int]) -> None:
    async with ctx.sessions() as session:
        rows = await session.execute(select(Device.id, Device.gateway_id).where(Device.id.in_(device_ids)))
        gateways = {row.id: row.gateway_id for row in rows}
    ctx.changed(device_ids, gateways)


async def pause(ctx: ServerContext, rollout_id: int, reason: str = "paused by an operator") -> Rollout:
    async with ctx.rollout_lock(rollout_id), ctx.sessions.begin() as session:
        rollout = await _operated(session, rollout_id)
        if rollout.status != "running":
            raise RolloutError(f"rollout {rollout_id} is {rollout.status}, not running")
        _pause(rollout, reason)
        rollout.revision += 1
    return rollout


async def resume(ctx: ServerContext, rollout_id: int) -> Rollout:
    async with ctx.rollout_lock(rollout_id), ctx.sessions.begin() as session:
        rollout = await _operated(session, rollout_id)
        if rollout.status != "paused":
            raise RolloutError(f"rollout {rollout_id} is {rollout.status}, not paused")
        groups = (
            (
                await session.execute(
                    select(RolloutGroup).where(RolloutGroup.rollout_id == rollout_id, RolloutGroup.status == "running")
                )
            )
            .scalars()
            .all()
        )
        for group in groups:
            group.error_baseline = (await _group_counts(session, group.id))["error"]
        # A group that ended below the success threshold stays finished: resuming says it passed.
        rollout.status = "running"
        rollout.pause_reason = ""
        rollout.revision += 1
    await evaluate_soon(ctx, rollout_id)
    async with ctx.sessions() as session:
        fresh = await session.get(Rollout, rollout_id)
    assert fresh is not None
    return fresh


async def evaluate_soon(ctx: ServerContext, rollout_id: int) -> None:
    """:func:`evaluate` after another transaction committed: a database hiccup here is left to the tick
    (the committed change must not be reported as failed, or a client would retry it)."""
    try:
        await evaluate(ctx, rollout_id)
    except (OperationalError, DBAPIError) as err:
        log.warning("rollout %s: evaluation deferred to the background tick: %s", rollout_id, err)


async def cancel(ctx: ServerContext, rollout_id: int) -> Rollout:
    """Stop the rollout; every open action of it becomes a DDI ``cancelAction``."""
    async with ctx.rollout_lock(rollout_id), ctx.sessions.begin() as session:
        rollout = await _operated(session, rollout_id)
        if rollout.status in ("finished", "canceled"):
            raise RolloutError(f"rollout {rollout_id} is already {rollout.status}")
        rollout.status = "canceled"
        rollout.revision += 1
        await session.execute(
            update(RolloutGroup)
            .where(RolloutGroup.rollout_id == rollout_id, RolloutGroup.status.in_(("scheduled", "running")))
            .values(status="canceled")
        )
        device_ids = await cancel_actions(session, Action.rollout_id == rollout_id, "rollout canceled")
    await _notify(ctx, device_ids)
    return rollout


async def cancel_actions(session: AsyncSession, where: Any, note: str) -> list[int]:
    """Put the matching open actions into ``canceling``; the affected device ids."""
    now = utcnow()
    actions = (
        (
            await session.execute(
                select(Action).where(where, Action.active.is_(True), Action.status != "canceling").with_for_update()
            )
        )
        .scalars()
        .all()
    )
    for action in actions:
        action.status = "canceling"
        action.updated_at = now
        session.add(ActionStatus(action_id=action.id, status="canceling", messages=[note], created_at=now))
    return [a.device_id for a in actions]


async def status(session: AsyncSession, rollout: Rollout) -> dict[str, Any]:
    """The rollout, each group's counts, and each device's state."""
    release = await session.get(Release, rollout.release_id)
    groups_out = []
    groups = (
        await session.execute(
            select(RolloutGroup).where(RolloutGroup.rollout_id == rollout.id).order_by(RolloutGroup.position)
        )
    ).scalars()
    for group in groups:
        rows = await session.execute(
            select(RolloutMember, Device.controller_id, Action.status)
            .join(Device, Device.id == RolloutMember.device_id)
            .outerjoin(Action, Action.id == RolloutMember.action_id)
            .where(RolloutMember.group_id == group.id)
            .order_by(RolloutMember.id)
        )
        devices = [
            {
                "controller_id": cid,
                "state": state or ("skipped" if m.skipped else "waiting"),
                "skipped": m.skipped,
                "action_id": m.action_id,
            }
            for m, cid, state in rows.all()
        ]
        counts = await _group_counts(session, group.id)
        groups_out.append(
            {
                "name": group.name,
                "position": group.position,
                "status": group.status,
                **counts,
                "skipped": sum(1 for d in devices if d["skipped"]),
                "devices": devices,
            }
        )
    return {
        "id": rollout.id,
        "name": rollout.name,
        "release": release.version if release else None,
        "release_id": rollout.release_id,
        "status": rollout.status,
        "pause_reason": rollout.pause_reason or None,
        "forced": rollout.forced,
        "download_only": rollout.download_only,
        "success_threshold": rollout.success_threshold,
        "error_threshold_count": rollout.error_threshold_count,
        "error_threshold_percent": rollout.error_threshold_percent,
        "maintenance": rollout.maintenance,
        "filter": rollout.filter,
        "groups": groups_out,
    }


async def tick(ctx: ServerContext) -> None:
    """Advance every running rollout (the safety net behind the feedback-driven evaluation)."""
    async with ctx.sessions() as session:
        ids = list((await session.execute(select(Rollout.id).where(Rollout.status == "running"))).scalars())
    for rollout_id in ids:
        await evaluate(ctx, rollout_id)
