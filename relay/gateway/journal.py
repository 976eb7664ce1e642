"""The durable journal: jobs, their progress, and an outbox of feedback and log batches, in SQLite.

Every change is one transaction, so a gateway killed at any moment finds on restart exactly what it had
decided: each job's state (and so whether to resume the relay), and every result not yet delivered, in the
order it was produced.  The outbox is delivered strictly in ``seq`` order per device; an entry is marked
delivered in the same transaction that reads the next, after the server answered 2xx (or 410, "that action is
already closed": the earlier delivery got through, so it is not sent again).

SQLite is used through the standard library's ``sqlite3`` rather than SQLAlchemy: the journal is one local
file with two tables and no migrations beyond ``PRAGMA user_version``, read and written by one process.  Its
calls block, so :class:`Journal` runs them on a dedicated thread (one connection, one writer, in order) and
the event loop awaits them.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["FINAL_STATES", "Job", "Journal", "OutboxEntry"]

T = TypeVar("T")
SCHEMA_VERSION = 2
FINAL_STATES = ("succeeded", "failed", "cancelled", "rejected")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    controller_id TEXT NOT NULL,
    action_id TEXT NOT NULL,
    port TEXT NOT NULL,
    version TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    progress_cnt INTEGER NOT NULL DEFAULT 0,
    progress_of INTEGER NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    updated REAL NOT NULL,
    deployment TEXT NOT NULL DEFAULT '',
    result_seq INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_action ON jobs (controller_id, action_id, id);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    controller_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    body TEXT NOT NULL,
    coalesce_key TEXT,
    created REAL NOT NULL,
    delivered REAL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (controller_id, seq) WHERE delivered IS NULL;
"""

# schema 1 keyed jobs by (controllerId, action id) alone, a UNIQUE constraint SQLite cannot drop: rebuild
_FROM_1 = (
    """
ALTER TABLE jobs RENAME TO jobs_v1;
"""
    + _SCHEMA.split("CREATE TABLE IF NOT EXISTS outbox", maxsplit=1)[0]
    + """
INSERT INTO jobs (id, controller_id, action_id, port, version, state, attempts, progress_cnt, progress_of, detail,
                  created, updated)
    SELECT id, controller_id, action_id, port, version, state, attempts, progress_cnt, progress_of, detail,
           created, updated FROM jobs_v1;
DROP TABLE jobs_v1;
"""
)


@dataclass(frozen=True)
class Job:
    id: int
    controller_id: str
    action_id: str
    port: str
    version: str | None
    state: str
    attempts: int
    progress_cnt: int
    progress_of: int
    detail: str
    deployment: str = ""  # the deployment's digest: what it delivers

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True)
class OutboxEntry:
    seq: int
    controller_id: str
    kind: str  # "feedback", "cancel-feedback", "logs"
    path: str  # relative to the device's DDI base, e.g. "deploymentBase/5/feedback"
    body: dict[str, Any]


class Journal:
    """The journal file at ``path``.  ``await Journal.open(path)``; every method is a coroutine."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # one thread, one connection: SQLite serialises writers anyway, and order matters
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-journal")
        self._db: sqlite3.Connection | None = None
        self.changed = asyncio.Event()  # set whenever something is queued

    @classmethod
    async def open(cls, path: Path) -> Journal:
        journal = cls(path)
        await journal._run(journal._open)
        return journal

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # a result the gateway acknowledged survives a power cut
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            db.close()
            from .errors import GatewayError

            raise GatewayError(
                f"{self.path} was written by a newer gateway (schema {version})",
                hint="run the newer gateway, or move the journal away",
            )
        if version == 1:
            db.executescript("BEGIN;" + _FROM_1 + "COMMIT;")
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    def _tx(self, func: Callable[[sqlite3.Connection], T]) -> T:
        db = self._db
        assert db is not None, "journal is closed"
        db.execute("BEGIN IMMEDIATE")
        try:
            result = func(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    # -- jobs -------------------------------------------------------------------------------------------------
    async def job(self, controller_id: str, action_id: str) -> Job | None:
        """The latest job for this action id."""

        def read(db: sqlite3.Connection) -> Job | None:
            row = db.execute(_LATEST, (controller_id, action_id)).fetchone()
            return _job(row) if row else None

        return await self._run(self._tx, read)

    async def start_job(
        self,
        controller_id: str,
        action_id: str,
        port: str,
        version: str | None,
        deployment: str = "",
        *,
        offered_at: float | None = None,
    ) -> Job:
        """The job for this deployment: the one already journalled (a restart), or a new one.

        ``deployment`` is what the action delivers (:attr:`~relay.gateway.ddi.Deployment.digest`): an action
        id that comes back with other content is a new deployment (gooseBit's ids are its software ids).  The
        same content offered again although our closing result reached the server before the offer was made
        (``offered_at``, the time the poll was sent) is a new deployment too (gooseBit, re-assigned); while the
        result is undelivered, the server simply has not heard it yet, and the old job stands."""
        asked = time.time() if offered_at is None else offered_at

        def upsert(db: sqlite3.Connection) -> Job:
            row = db.execute(_LATEST, (controller_id, action_id)).fetchone()
            if row is not None:
                job = _job(row)
                if job.deployment == deployment and (not job.final or not _reported_before(db, row, asked)):
                    return job
            now = time.time()
            cursor = db.execute(
                "INSERT INTO jobs (controller_id, action_id, port, version, state, created, updated, deployment)"
                " VALUES (?, ?, ?, ?, 'new', ?, ?, ?)",
                (controller_id, action_id, port, version, now, now, deployment),
            )
            return _job(db.execute("SELECT * FROM jobs WHERE id=?", (cursor.lastrowid,)).fetchone())

        return await self._run(self._tx, upsert)

    async def update_job(self, job_id: int, **fields: Any) -> None:
        allowed = {"state", "attempts", "progress_cnt", "progress_of", "detail", "version", "port"}
        if not fields or set(fields) - allowed:
            raise ValueError(f"cannot set {sorted(set(fields) - allowed)}")
        assignments = ", ".join(f"{key}=?" for key in fields)

        def update(db: sqlite3.Connection) -> None:
            db.execute(f"UPDATE jobs SET {assignments}, updated=? WHERE id=?", (*fields.values(), time.time(), job_id))

        await self._run(self._tx, update)

    async def jobs(self, *, active_only: bool = False) -> list[Job]:
        where = " WHERE state NOT IN ('succeeded','failed','cancelled','rejected')" if active_only else ""

        def read(db: sqlite3.Connection) -> list[Job]:
            return [_job(row) for row in db.execute(f"SELECT * FROM jobs{where} ORDER BY id")]

        return await self._run(self._tx, read)

    # -- outbox -----------------------------------------------------------------------------------------------
    async def enqueue(
        self,
        controller_id: str,
        kind: str,
        path: str,
        body: dict[str, Any],
        *,
        coalesce_key: str | None = None,
        job_update: tuple[int, dict[str, Any]] | None = None,
    ) -> int:
        """Queue one message; with ``coalesce_key``, an undelivered message with the same key is dropped
        first (a newer progress report replaces an older one nobody has seen).  ``job_update`` changes the
        job in the same transaction, so a job is never final without its result queued."""
        text = json.dumps(body, separators=(",", ":"))

        def insert(db: sqlite3.Connection) -> int:
            now = time.time()
            if coalesce_key is not None:
                db.execute(
                    "DELETE FROM outbox WHERE controller_id=? AND coalesce_key=? AND delivered IS NULL",
                    (controller_id, coalesce_key),
                )
            cursor = db.execute(
                "INSERT INTO outbox (controller_id, kind, path, body, coalesce_key, created) VALUES (?, ?, ?, ?, ?, ?)",
                (controller_id, kind, path, text, coalesce_key, now),
            )
            seq = cursor.lastrowid
            assert seq is not None
            if job_update is not None:
                job_id, fields = job_update
                if fields.get("state") in FINAL_STATES:
                    fields = {**fields, "result_seq": seq}  # the job's result is this message
                assignments = ", ".join(f"{key}=?" for key in fields)
                db.execute(f"UPDATE jobs SET {assignments}, updated=? WHERE id=?", (*fields.values(), now, job_id))
            return seq

        try:
            seq = await self._run(self._tx, insert)
        finally:
            # also when the caller was cancelled meanwhile: the journal thread commits the row all the same,
            # and the deliverer must hear of it now, not at its next idle tick
            self.changed.set()
        return int(seq)

    async def pending(self, limit: int = 100) -> list[OutboxEntry]:
        """Undelivered messages, oldest first."""

        def read(db: sqlite3.Connection) -> list[OutboxEntry]:
            rows = db.execute(
                "SELECT seq, controller_id, kind, path, body FROM outbox WHERE delivered IS NULL ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
            return [OutboxEntry(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

        return await self._run(self._tx, read)

    async def delivered(self, seq: int) -> None:
        await self._run(
            self._tx, lambda db: db.execute("UPDATE outbox SET delivered=? WHERE seq=?", (time.time(), seq))
        )

    async def backlog(self) -> int:
        def count(db: sqlite3.Connection) -> int:
            return int(db.execute("SELECT COUNT(*) FROM outbox WHERE delivered IS NULL").fetchone()[0])

        return await self._run(self._tx, count)


_LATEST = "SELECT * FROM jobs WHERE controller_id=? AND action_id=? ORDER BY id DESC LIMIT 1"


def _reported_before(db: sqlite3.Connection, row: tuple[Any, ...], when: float) -> bool:
    """Whether the job's closing result reached the server before ``when``."""
    result_seq = row[13]
    if result_seq is None:
        return False
    delivered = db.execute("SELECT delivered FROM outbox WHERE seq=?", (result_seq,)).fetchone()
    return bool(delivered and delivered[0] is not None and delivered[0] < when)


def _job(row: tuple[Any, ...]) -> Job:
    return Job(
        id=row[0],
        controller_id=row[1],
        action_id=row[2],
        port=row[3],
        version=row[4],
        state=row[5],
        attempts=row[6],
        progress_cnt=row[7],
        progress_of=row[8],
        detail=row[9],
        deployment=row[12],
    )
