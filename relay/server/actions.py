"""Action states, as hawkBit keeps them, and what DDI feedback does to them.

States: ``scheduled`` (assigned, not yet reported on), ``running``, ``download``, ``downloaded``,
``warning`` (the device rejected it; still open), ``canceling`` (the server asks the device to stop:
``cancelAction``), and the final ``finished``, ``error``, ``canceled``.

Deployment feedback (``ddi_api.md``'s table): closed + success/none -> finished, closed + failure -> error,
canceled -> canceled, rejected -> warning, download -> download, downloaded -> downloaded (which closes a
download-only action), proceeding/scheduled/resumed -> running.  Cancel feedback: closed + success/none ->
canceled, closed + failure -> error, rejected -> the cancel is refused and the action runs on; anything else
is recorded only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

from .errors import http_error

__all__ = [
    "ACTIVE_STATES",
    "EXECUTIONS",
    "FINAL_STATES",
    "FINISHED_RESULTS",
    "cancel_transition",
    "change_hash",
    "check_maintenance",
    "deployment_transition",
    "hawkbit_status",
    "window_available",
]

EXECUTIONS = ("closed", "proceeding", "canceled", "scheduled", "rejected", "resumed", "downloaded", "download")
FINISHED_RESULTS = ("success", "failure", "none")
FINAL_STATES = frozenset({"finished", "error", "canceled"})
ACTIVE_STATES = frozenset({"scheduled", "running", "download", "downloaded", "warning", "canceling"})
_HAWKBIT_NAMES = {
    "scheduled": "SCHEDULED",
    "running": "RUNNING",
    "download": "DOWNLOAD",
    "downloaded": "DOWNLOADED",
    "warning": "WARNING",
    "canceling": "CANCELING",
    "finished": "FINISHED",
    "error": "ERROR",
    "canceled": "CANCELED",
    "cancel_rejected": "CANCEL_REJECTED",
}
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
SECONDS_PER_DAY = 24 * 3600


def hawkbit_status(state: str) -> str:
    return _HAWKBIT_NAMES.get(state, state.upper())


def deployment_transition(execution: str, finished: str, *, download_only: bool) -> str | None:
    """The action's new state after a deploymentBase feedback, or ``None`` to keep it."""
    if execution == "closed":
        return "error" if finished == "failure" else "finished"
    if execution == "canceled":
        return "canceled"
    if execution == "rejected":
        return "warning"
    if execution == "download":
        return "download"
    if execution == "downloaded":
        return "finished" if download_only else "downloaded"
    return "running"  # proceeding, scheduled, resumed


def cancel_transition(execution: str, finished: str) -> str | None:
    """The action's new state after a cancelAction feedback (``running`` when the device refuses to cancel)."""
    if execution == "closed":
        return "error" if finished == "failure" else "canceled"
    if execution == "canceled":
        return "canceled"
    if execution == "rejected":
        return "running"
    return None


def check_maintenance(value: Any) -> dict[str, Any] | None:
    """A maintenance window ``{"start": "HH:MM" (UTC, daily), "duration": seconds}``, validated, or a 400."""
    from aiohttp import web

    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("start"), str)
        or not _HHMM.match(value["start"])
        or not isinstance(value.get("duration"), int)
        or isinstance(value.get("duration"), bool)
        or not 0 < value["duration"] <= SECONDS_PER_DAY
    ):
        raise http_error(
            web.HTTPBadRequest,
            "bad-field",
            'maintenance must be {"start": "HH:MM" (UTC, every day), "duration": seconds (1..86400)}',
        )
    return {"start": value["start"], "duration": value["duration"]}


def window_available(maintenance: dict[str, Any] | None, now: dt.datetime | None = None) -> bool | None:
    """Whether the daily window is open now; ``None`` when there is no window."""
    if not maintenance:
        return None
    now = now or dt.datetime.now(dt.UTC)
    hours, minutes = (int(p) for p in maintenance["start"].split(":"))
    start = hours * 3600 + minutes * 60
    seconds = now.hour * 3600 + now.minute * 60 + now.second
    return (seconds - start) % SECONDS_PER_DAY < int(maintenance["duration"])


def change_hash(action_id: int, *, forced: bool, download_only: bool, window: bool | None, state: str) -> int:
    """hawkBit's ``c`` value: a signed 32-bit hash that changes whenever what the device should do changes."""
    text = f"{action_id}:{forced}:{download_only}:{window}:{state == 'canceling'}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big", signed=True)
