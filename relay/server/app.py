"""The application factory: ``create_app(settings) -> web.Application``.

Start-up (a ``cleanup_ctx``): open the database, run the Alembic migrations, make sure an admin token
exists (the first start writes one to ``DATA/admin-token``, mode 0600), load the trusted keys, start the
background tasks (rollout ticks, last-seen flushes).  Shut-down cancels and awaits them and disposes the engine.

Middlewares: request latency into the metrics; a database that is locked or gone answers 503 with
``Retry-After`` (nothing half-written: each request is one transaction); an unexpected error is a JSON 500
that is logged, never a traceback to the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web
from sqlalchemy import func, select, text
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from protocol.image import PublicKey

from .. import startup
from . import admin, ddi, rollouts
from .actions import ACTIVE_STATES
from .context import CHANGE_FEED_INTERVAL, CONTEXT, LAST_SEEN_FLUSH, ServerContext
from .db import make_engine, make_sessionmaker, migrate, safe_url
from .errors import ConfigError, ServerError, http_error
from .metrics import Metrics
from .models import Action, AdminToken, Rollout
from .settings import Settings
from .storage import sweep_temporary
from .tokens import hash_token, new_token

__all__ = ["ADMIN_TOKEN_CREATED", "create_app", "ensure_admin_token", "load_trusted_keys"]

log = logging.getLogger(__name__)

ADMIN_TOKEN_LOCK_KEY = 0x5354_4D33
RETRY_AFTER = "1"  # seconds a client should wait after a 503
ADMIN_TOKEN_CREATED: web.AppKey[list[Path]] = web.AppKey("admin_token_created", list)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def load_trusted_keys(paths: tuple[Path, ...]) -> list[PublicKey]:
    """Public keys from files, or from every ``*.pem`` in a folder (:func:`relay.startup.load_trusted_keys`)."""
    return startup.load_trusted_keys(paths, error=ConfigError)


async def ensure_admin_token(ctx: ServerContext) -> Path | None:
    """Create the first admin token (and its file) on a fresh server; the file's path when created."""
    path = ctx.settings.admin_token_file
    async with ctx.sessions.begin() as session:
        if ctx.engine.dialect.name == "postgresql":  # processes starting together take turns
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADMIN_TOKEN_LOCK_KEY})
        if path.exists():
            token = path.read_text(encoding="utf-8").strip()
            known = (
                await session.execute(select(AdminToken.id).where(AdminToken.token_hash == hash_token(token)))
            ).first()
            if known is None and token:
                session.add(AdminToken(name="admin (token file)", role="admin", token_hash=hash_token(token)))
            return None
        count = (await session.execute(select(func.count()).select_from(AdminToken))).scalar_one()
        if count:
            return None
        token = new_token()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process sharing the data folder created it a moment ago
            return None
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(token + "\n")
        session.add(AdminToken(name="admin (first start)", role="admin", token_hash=hash_token(token)))
    log.warning("created the first admin token in %s (mode 0600)", path)
    return path


async def _every(seconds: float, work: Callable[[], Awaitable[None]], what: str) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await work()
        except (OperationalError, DBAPIError, OSError) as err:
            log.warning("%s failed (will retry): %s", what, err)
        except Exception:
            log.exception("%s failed", what)


def _preload(ctx: ServerContext) -> Callable[[], Awaitable[None]]:
    async def reload() -> None:
        await ctx.preload()

    return reload


def _context_factory(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        try:
            settings.data.mkdir(parents=True, exist_ok=True)
            settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
        except FileExistsError as err:
            raise ConfigError(f"data: {err.filename} exists and is not a folder") from err
        except OSError as err:
            raise ConfigError(f"data: cannot create the folder {err.filename}: {err.strerror}") from err
        sweep_temporary(settings.artifacts_dir)
        keys = load_trusted_keys(settings.trusted_keys)
        if not keys:
            log.warning("no trusted signing key (--trusted-key / trusted_keys): every release upload will be refused")
        engine = make_engine(settings.database_url)
        try:
            try:
                await migrate(engine)
            except (SQLAlchemyError, OSError) as err:
                reason = getattr(err, "orig", None) or err
                raise ServerError(
                    f"cannot open the database {safe_url(settings.database_url)}: {reason}",
                    hint="check --database (user, password, host, database name) and that the server runs",
                ) from err
            ctx = ServerContext(
                settings=settings,
                engine=engine,
                sessions=make_sessionmaker(engine),
                metrics=app[_METRICS],
                trusted_keys=keys,
            )
            app[CONTEXT] = ctx
            created = await ensure_admin_token(ctx)
            log.info("cached %d devices", await ctx.preload())
            if created is not None:
                app[ADMIN_TOKEN_CREATED].append(created)
            tasks = [
                asyncio.create_task(_every(settings.rollout_tick, lambda: rollouts.tick(ctx), "rollout tick")),
                asyncio.create_task(_every(LAST_SEEN_FLUSH, ctx.flush_last_seen, "last-seen flush")),
                asyncio.create_task(_every(CHANGE_FEED_INTERVAL, ctx.watch_changes, "change feed")),
                asyncio.create_task(_every(max(settings.cache_ttl / 2, 1.0), _preload(ctx), "cache reload")),
            ]
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                with contextlib.suppress(OperationalError, DBAPIError, OSError):
                    await ctx.flush_last_seen()
        finally:
            await engine.dispose()

    return context


_METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)


def _route_name(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def _metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        request.app[_METRICS].latency.labels(_route_name(request), request.method, str(status)).observe(
            time.perf_counter() - start
        )


@web.middleware
async def _error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except DataError as err:  # a value the database cannot hold slipped past the checks
        log.warning("value refused by the database in %s %s: %s", request.method, request.path, err.orig)
        raise http_error(web.HTTPBadRequest, "bad-value", "a value is out of range for the database") from None
    except (IntegrityError, ProgrammingError):
        log.exception("database error in %s %s", request.method, request.path)
        raise http_error(web.HTTPInternalServerError, "internal", "internal server error (logged)") from None
    except (OperationalError, DBAPIError, PoolTimeoutError, ConnectionRefusedError) as err:
        log.warning("database unavailable for %s %s: %s", request.method, request.path, err)
        request.app[_METRICS].db_errors.inc()
        raise http_error(
            web.HTTPServiceUnavailable,
            "database-unavailable",
            "the database is busy or unreachable; retry shortly",
            headers={"Retry-After": RETRY_AFTER},
        ) from None
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        raise http_error(web.HTTPInternalServerError, "internal", "internal server error (logged)") from None


async def healthz(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    try:
        async with ctx.sessions() as session:
            await session.execute(select(1))
    except (OperationalError, DBAPIError, OSError, PoolTimeoutError) as err:
        return web.json_response({"status": "unavailable", "database": str(err)[:200]}, status=503)
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    async with ctx.sessions() as session:
        rollout_rows = (await session.execute(select(Rollout.status, func.count()).group_by(Rollout.status))).all()
        action_rows = (
            await session.execute(
                select(Action.status, func.count()).where(Action.active.is_(True)).group_by(Action.status)
            )
        ).all()
    for state in ("running", "paused", "finished", "canceled"):
        ctx.metrics.rollouts.labels(state).set(0)
    for state, count in rollout_rows:
        ctx.metrics.rollouts.labels(state).set(count)
    for state in ACTIVE_STATES:
        ctx.metrics.actions.labels(state).set(0)
    for state, count in action_rows:
        ctx.metrics.actions.labels(state).set(count)
    return web.Response(body=ctx.metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"})


def create_app(settings: Settings) -> web.Application:
    """The whole server as one aiohttp application (the DDI, the admin API, health and metrics)."""
    app = web.Application(middlewares=[_metrics_middleware, _error_middleware], client_max_size=4 * 1024**2)
    app[_METRICS] = Metrics()
    app[ADMIN_TOKEN_CREATED] = []
    app.cleanup_ctx.append(_context_factory(settings))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    admin.add_routes(app)
    ddi.add_routes(app)
    return app
