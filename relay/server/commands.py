"""Handlers of ``stm32ota serve`` and the admin commands (a thin client over the admin REST API)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

from .. import startup
from .access_log import JsonAccessLogger
from .app import ADMIN_TOKEN_CREATED, create_app
from .errors import ConfigError, ServerError
from .settings import Settings, load_settings
from .validate import is_number

__all__ = ["AdminClient", "cmd_serve"]

log = logging.getLogger(__name__)

CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=120, connect=10)
SERVER_URL_FILE = "server-url"
SERVE_LOCK_FILE = "serve.lock"


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# --- serve ----------------------------------------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        Path(args.config) if args.config else None,
        data=args.data,
        listen=args.listen,
        database=args.database,
        public_url=args.public_url,
        trusted_keys=args.trusted_key,
        poll_interval=args.poll_interval,
        max_release_size=args.max_release_size,
        tenants=args.tenants,
    )


@contextlib.contextmanager
def _access_log(enabled: bool) -> Iterator[None]:
    """JSON access lines on stderr while the server runs (the handler is removed afterwards)."""
    if not enabled:
        yield
        return
    access = logging.getLogger("relay.server.access")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level, propagate = access.level, access.propagate
    access.setLevel(logging.INFO)
    access.addHandler(handler)
    access.propagate = False
    try:
        yield
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
        access.propagate = propagate


@contextlib.contextmanager
def _sqlite_lock(settings: Settings) -> Iterator[None]:
    """On SQLite, one ``serve`` per data folder: a second one would share the database and take over
    ``DATA/server-url`` (PostgreSQL is the engine for several processes, which may share the folder)."""
    if not settings.database_url.startswith("sqlite"):
        yield
        return
    try:
        settings.data.mkdir(parents=True, exist_ok=True)
        handle = (settings.data / SERVE_LOCK_FILE).open("a+", encoding="utf-8")
    except FileExistsError as err:
        raise ConfigError(f"data: {err.filename} exists and is not a folder") from err
    except OSError as err:
        raise ConfigError(f"data: cannot use the folder {settings.data}: {err.strerror}") from err
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            pid = handle.read().strip() or "?"
            raise ServerError(
                f"another `stm32ota serve` (pid {pid}) is running on the data folder {settings.data}",
                hint="stop it first; several processes need PostgreSQL (--database postgresql://...)",
            ) from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)


async def _serve(settings: Settings, *, access_log: bool = True) -> None:
    with _sqlite_lock(settings):
        await _serve_locked(settings, access_log=access_log)


async def _serve_locked(settings: Settings, *, access_log: bool) -> None:
    app = create_app(settings)
    runner, url = await startup.start_site(
        app, settings.listen, error=ServerError, access_log_class=JsonAccessLogger, handle_signals=False
    )
    _out(url)
    (settings.data / SERVER_URL_FILE).write_text(url + "\n", encoding="utf-8")
    for path in app[ADMIN_TOKEN_CREATED]:
        _out(f"admin token created: {path} (mode 0600; use it with --token or --data)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        with _access_log(access_log):
            await stop.wait()
    finally:
        await runner.cleanup()


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        asyncio.run(_serve(settings, access_log=not args.no_access_log))
    except OSError as err:
        raise ServerError(f"the server stopped: {err}") from err
    return 0


# --- the admin client -----------------------------------------------------------------------------------------------


class AdminClient:
    """The admin REST API over one aiohttp session; errors become :class:`ServerError` with the server's message."""

    def __init__(self, base: str, token: str, tenant: str | None = None) -> None:
        self.base = base.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}
        self.params = {"tenant": tenant} if tenant else {}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AdminClient:
        self._session = aiohttp.ClientSession(timeout=CLIENT_TIMEOUT, headers=self.headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def download(self, path: str) -> bytes:
        """The raw body of a GET (the image of a release)."""
        assert self._session is not None
        try:
            async with self._session.get(f"{self.base}/api/v1{path}", params=self.params) as response:
                if response.status >= 400:
                    raise _refused("GET", path, response.status, await response.text(), response.reason, base=self.base)
                return await response.read()
        except aiohttp.ClientError as err:
            raise ServerError(f"cannot reach the server at {self.base}: {err}") from err

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        assert self._session is not None
        url = f"{self.base}/api/v1{path}"
        params = {**self.params, **kwargs.pop("query", {})}
        try:
            async with self._session.request(method, url, params=params, **kwargs) as response:
                text = await response.text()
                if response.status >= 400:
                    raise _refused(method, path, response.status, text, response.reason, base=self.base)
                if not text:
                    return None
                try:
                    return json.loads(text)
                except ValueError:
                    raise _not_our_api(self.base) from None
        except aiohttp.ClientError as err:
            raise ServerError(
                f"cannot reach the server at {self.base}: {err}",
                hint="check --server / STM32OTA_SERVER and that `stm32ota serve` runs",
            ) from err
        except TimeoutError as err:
            raise ServerError(f"the server at {self.base} did not answer in time") from err


def _not_our_api(base: str) -> ServerError:
    return ServerError(
        f"{base} did not answer as an stm32ota server's admin API",
        hint="--server is the base URL `stm32ota serve` printed (http://HOST:PORT, no path)",
    )


def _refused(method: str, path: str, status: int, text: str, reason: str | None, *, base: str = "") -> ServerError:
    """The server's refusal as one sentence: its JSON ``message``, else the start of the body."""
    try:
        message = json.loads(text)["message"]
    except (ValueError, KeyError, TypeError):
        if status == 404:  # our API answers every 404 in JSON: this URL is not (the base of) an stm32ota server
            return _not_our_api(base)
        message = text.strip()[:200] or reason
    return ServerError(f"{method} {path}: {status} {message}", hint=_hint(status))


def _hint(status: int) -> str | None:
    return {
        401: "check --token / STM32OTA_TOKEN (the first admin token is in DATA/admin-token)",
        403: "this token's role does not allow that; ask for a release-manager or admin token",
    }.get(status)


def _connection(args: argparse.Namespace) -> tuple[str, str]:
    data = args.data or os.environ.get("STM32OTA_DATA")
    server = args.server or os.environ.get("STM32OTA_SERVER")
    token = args.token or os.environ.get("STM32OTA_TOKEN")
    if data:
        folder = Path(data).expanduser()
        if not folder.is_dir():
            raise ServerError(
                f"no data folder {folder}",
                hint="--data / STM32OTA_DATA is the folder a local `stm32ota serve --data DIR` uses",
            )
        with contextlib.suppress(OSError):
            server = server or (folder / SERVER_URL_FILE).read_text(encoding="utf-8").strip()
        with contextlib.suppress(OSError):
            token = token or (folder / "admin-token").read_text(encoding="utf-8").strip()
        if not server:
            raise ServerError(
                f"no {SERVER_URL_FILE} in {folder}: the server has not been started on this data folder",
                hint="start it with `stm32ota serve --data DIR`, or give --server URL",
            )
    if not server:
        raise ServerError("no server given", hint="use --server URL, STM32OTA_SERVER, or --data DIR of a local server")
    scheme = server.partition("://")[0].lower() if "://" in server else ""
    if scheme not in ("http", "https"):
        raise ServerError(
            f"--server {server!r} is not a URL",
            hint="give the base URL `stm32ota serve` printed, e.g. http://HOST:PORT",
        )
    if not token:
        raise ServerError("no admin token given", hint="use --token, STM32OTA_TOKEN, or --data DIR (DIR/admin-token)")
    return server, token


def _run(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    server, token = _connection(args)

    async def go() -> Any:
        async with AdminClient(server, token, args.tenant) as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def _show(args: argparse.Namespace, result: Any, text: str) -> int:
    if args.json:
        _out(json.dumps(result, indent=2))
    else:
        _out(text)
    return 0


def _table(rows: list[list[str]], header: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def _value(name: str, value: Any) -> str:
    """A field as an operator reads it: chips as DEV_IDs (``0x413``, as ``list`` shows them), nothing as ``-``."""
    if value is None:
        return "-"
    if name == "chip_id" and isinstance(value, int):
        return f"0x{value:03x}"
    return str(value)


def _fields(obj: dict[str, Any], names: list[str]) -> str:
    return "\n".join(f"{name + ':':<20}{_value(name, obj.get(name))}" for name in names)


# --- release ----------------------------------------------------------------------------------------------------


def cmd_release_add(args: argparse.Namespace) -> int:
    try:
        data = Path(args.image).read_bytes()
    except OSError as err:
        raise ServerError(f"cannot read {args.image}: {err.strerror}") from err
    params = {
        k: v for k, v in (("name", args.name), ("filename", args.filename), ("description", args.description)) if v
    }
    release = _run(
        args, "POST", "/releases", data=data, headers={"Content-Type": "application/octet-stream"}, query=params
    )
    return _show(
        args,
        release,
        f"release {release['version']} added (id {release['id']}, {release['size']} bytes,"
        f" sha256 {release['sha256'][:16]}...)",
    )


_RELEASE_FIELDS = [
    "id",
    "version",
    "name",
    "filename",
    "size",
    "sha256",
    "sha1",
    "md5",
    "chip_id",
    "board_id",
    "security_counter",
    "signature_type",
    "key_hash",
    "created_at",
    "retired",
]


def cmd_release_list(args: argparse.Namespace) -> int:
    releases = _run(args, "GET", "/releases")
    rows = [
        [
            str(r["id"]),
            r["version"],
            r["name"],
            str(r["size"]),
            "retired" if r["retired"] else "",
            f"0x{r['chip_id']:03x}" if r["chip_id"] is not None else "-",
        ]
        for r in releases
    ]
    return _show(args, releases, _table(rows, ["ID", "VERSION", "NAME", "SIZE", "STATE", "CHIP"]))


def cmd_release_show(args: argparse.Namespace) -> int:
    release = _run(args, "GET", f"/releases/{args.release}")
    return _show(args, release, _fields(release, _RELEASE_FIELDS))


def cmd_release_download(args: argparse.Namespace) -> int:
    server, token = _connection(args)

    async def go() -> tuple[bytes, Any]:
        async with AdminClient(server, token, args.tenant) as client:
            release = await client.request("GET", f"/releases/{args.release}")
            return await client.download(f"/releases/{release['id']}/image"), release

    data, release = asyncio.run(go())
    if hashlib.sha256(data).hexdigest() != release["sha256"]:
        raise ServerError(f"the image of {release['version']} arrived damaged (SHA-256 mismatch); nothing written")
    output = Path(args.output)
    try:
        output.write_bytes(data)
    except OSError as err:
        raise ServerError(f"cannot write {output}: {err.strerror}") from err
    return _show(args, release, f"release {release['version']} saved to {output} ({len(data)} bytes, SHA-256 checked)")


def cmd_release_retire(args: argparse.Namespace) -> int:
    release = _run(args, "POST", f"/releases/{args.release}/retire")
    return _show(args, release, f"release {release['version']} retired")


# --- rollout ----------------------------------------------------------------------------------------------------


def _window(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    start, sep, seconds = text.partition("+")
    if not sep or not is_number(seconds):
        raise ServerError(f"--window {text!r}: expected HH:MM+SECONDS, e.g. 02:00+7200")
    return {"start": start, "duration": int(seconds)}


def cmd_rollout_create(args: argparse.Namespace) -> int:
    flt: dict[str, Any] = {}
    if args.chip:
        flt["chip"] = args.chip
    if args.board is not None:
        flt["board"] = args.board
    if args.tags:
        flt["tags"] = args.tags
    if args.devices:
        flt["devices"] = args.devices
    try:
        percentages = [int(p) for p in args.percentages.split(",")]
    except ValueError:
        raise ServerError(f"--percentages {args.percentages!r}: give integers, e.g. 25,50,100") from None
    body = {
        "release": args.release,
        "name": args.name,
        "filter": flt,
        "canary": args.canary,
        "percentages": percentages,
        "success_threshold": args.success_threshold,
        "error_threshold_count": args.error_count,
        "error_threshold_percent": args.error_percent,
        "forced": args.forced,
        "download_only": args.download_only,
        "maintenance": _window(args.window),
    }
    rollout = _run(args, "POST", "/rollouts", json=body)
    return _show(args, rollout, _rollout_text(rollout))


def _rollout_text(rollout: dict[str, Any]) -> str:
    lines = [f"rollout {rollout['id']} ({rollout['name']}): release {rollout['release']}, {rollout['status']}"]
    if rollout.get("pause_reason"):
        lines.append(f"  paused: {rollout['pause_reason']}")
    for group in rollout["groups"]:
        lines.append(
            f"  {group['name']:<10} {group['status']:<10} {group['finished']}/{group['total']} updated,"
            f" {group['error']} failed, {group['active']} open, {group['skipped']} skipped"
        )
        for device in group["devices"]:
            reason = f" ({device['skipped']})" if device["skipped"] else ""
            lines.append(f"    {device['controller_id']:<32} {device['state']}{reason}")
    return "\n".join(lines)


def cmd_rollout_status(args: argparse.Namespace) -> int:
    if args.rollout is None:
        rollouts = _run(args, "GET", "/rollouts")
        rows = [[str(r["id"]), r["name"], r["release"], r["status"], r["pause_reason"] or ""] for r in rollouts]
        return _show(args, rollouts, _table(rows, ["ID", "NAME", "RELEASE", "STATUS", "REASON"]))
    rollout = _run(args, "GET", f"/rollouts/{args.rollout}")
    return _show(args, rollout, _rollout_text(rollout))


def _rollout_op(args: argparse.Namespace, op: str) -> int:
    rollout = _run(args, "POST", f"/rollouts/{args.rollout}/{op}")
    return _show(args, rollout, _rollout_text(rollout))


def cmd_rollout_pause(args: argparse.Namespace) -> int:
    return _rollout_op(args, "pause")


def cmd_rollout_resume(args: argparse.Namespace) -> int:
    return _rollout_op(args, "resume")


def cmd_rollout_cancel(args: argparse.Namespace) -> int:
    return _rollout_op(args, "cancel")


# --- device -------------------------------------------------------------------------------------------------------


def cmd_device_list(args: argparse.Namespace) -> int:
    path = "/devices" + (f"?state={args.state}" if args.state else "")
    devices = _run(args, "GET", path)
    rows = [
        [d["controller_id"], d["state"], d["gateway"] or "-", d["running_version"] or "-", d["last_seen_at"] or "never"]
        for d in devices
    ]
    return _show(args, devices, _table(rows, ["CONTROLLER ID", "STATE", "GATEWAY", "VERSION", "LAST SEEN"]))


def cmd_device_show(args: argparse.Namespace) -> int:
    device = _run(args, "GET", f"/devices/{args.controller_id}")
    text = _fields(
        device,
        [
            "controller_id",
            "state",
            "gateway",
            "chip_id",
            "board_id",
            "running_version",
            "tags",
            "attributes",
            "last_seen_at",
        ],
    )
    actions = [f"  action {a['id']}: {a['release']} {a['status']}" for a in device["actions"]]
    return _show(args, device, text + ("\nactions:\n" + "\n".join(actions) if actions else ""))


def cmd_device_add(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"controller_id": args.controller_id}
    for key, value in (("token", args.device_token), ("chip", args.chip), ("board", args.board), ("tags", args.tags)):
        if value is not None:
            body[key] = value
    device = _run(args, "POST", "/devices", json=body)
    return _show(args, device, f"device {device['controller_id']} added\nTargetToken {device['token']}")


def cmd_device_accept(args: argparse.Namespace) -> int:
    device = _run(args, "POST", f"/devices/{args.controller_id}/accept")
    if args.tags:
        device = _run(args, "PATCH", f"/devices/{args.controller_id}", json={"tags": args.tags})
    return _show(args, device, f"device {device['controller_id']} accepted")


def cmd_device_token(args: argparse.Namespace) -> int:
    result = _run(args, "POST", f"/devices/{args.controller_id}/token")
    return _show(args, result, f"TargetToken {result['token']}")


# --- gateway-token ----------------------------------------------------------------------------------------------


def cmd_gateway_create(args: argparse.Namespace) -> int:
    body = {
        "gateway": args.gateway,
        "label": args.label,
        "can_register": not args.no_register,
        "devices": args.devices or [],
    }
    result = _run(args, "POST", "/gateway-tokens", json=body)
    return _show(args, result, f"gateway token {result['id']} for {result['gateway']}\nGatewayToken {result['token']}")


def cmd_gateway_list(args: argparse.Namespace) -> int:
    tokens = _run(args, "GET", "/gateway-tokens")
    rows = [
        [
            str(t["id"]),
            t["gateway"],
            t["label"],
            "yes" if t["can_register"] else "no",
            "revoked" if t["revoked"] else "active",
        ]
        for t in tokens
    ]
    return _show(args, tokens, _table(rows, ["ID", "GATEWAY", "LABEL", "REGISTERS", "STATE"]))


def cmd_gateway_revoke(args: argparse.Namespace) -> int:
    result = _run(args, "DELETE", f"/gateway-tokens/{args.id}")
    return _show(args, result, f"gateway token {result['id']} revoked")
