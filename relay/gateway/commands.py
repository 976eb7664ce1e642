"""Handlers of ``stm32ota gateway`` and ``stm32ota gateway status`` (registered by :mod:`relay.gateway_cli`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from .config import DEFAULT_LISTEN, PortConfig, load_config
from .errors import ConfigError, GatewayError
from .service import Gateway

__all__ = ["JsonLogFormatter", "cmd_gateway", "cmd_status", "format_status"]

STATUS_TIMEOUT_S = 5.0


def _tokens(pairs: list[str]) -> dict[str, str]:
    tokens = {}
    for pair in pairs:
        cid, sep, token = pair.partition("=")
        if not sep or not cid or not token:
            raise ConfigError(f"--target-token takes CID=TOKEN, not {pair!r}")
        tokens[cid] = token
    return tokens


def _ports(args: argparse.Namespace) -> list[PortConfig]:
    ports = [PortConfig(url=url) for url in args.port]
    for rule in getattr(args, "usb", []):
        vid_pid, _, serial = rule.partition(",")
        ports.append(PortConfig(usb=vid_pid, serial_number=serial or None))
    ports += [PortConfig(glob=pattern) for pattern in getattr(args, "port_glob", [])]
    return ports


def config_from_args(args: argparse.Namespace) -> Any:
    return load_config(
        args.config,
        server=args.server,
        tenant=args.tenant,
        gateway_token=args.gateway_token,
        target_tokens=_tokens(args.target_token) or None,
        ports=_ports(args),
        baud=args.baud,
        trusted_keys=args.trusted_key,
        state_dir=args.state,
        listen=args.listen,
        hw_boardname=args.hw_boardname,
        hw_revision=args.hw_revision,
        events="off" if getattr(args, "no_events", False) else None,
    )


async def _run(gateway: Gateway) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    await gateway.start()
    sys.stdout.write(f"{gateway.status_url or '-'}\n")
    sys.stdout.flush()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        pass
    finally:
        await gateway.stop()


class JsonLogFormatter(logging.Formatter):
    """One JSON object a line (``time``, ``level``, ``logger``, ``message``; a board's own line also ``device``,
    ``device_level``, ``device_ms``): for journald and log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in ("device", "device_level", "device_ms"):  # a board's own line (relay.gateway.device)
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"))


def use_json_logs() -> None:
    for handler in logging.getLogger().handlers:
        handler.setFormatter(JsonLogFormatter())


def cmd_gateway(args: argparse.Namespace) -> int:
    """Run the gateway until SIGINT/SIGTERM.  The first stdout line is its status URL."""
    config = config_from_args(args)
    if getattr(args, "log_json", False):
        use_json_logs()
    asyncio.run(_run(Gateway(config)))
    return 0


def format_status(status: dict[str, Any]) -> str:
    lines = [f"gateway {status.get('gateway')} -> {status.get('server')} (event stream: {status.get('events', '-')})"]
    if status.get("rules"):
        lines.append("discovering: " + ", ".join(status["rules"]))
    lines.append(f"{'PORT':<24} {'DEVICE':<32} {'VERSION':<10} {'STATE':<12} {'JOB':<8} PROGRESS")
    for port in status.get("ports", []):
        progress = f"{port.get('phase') or ''} {100 * float(port.get('progress') or 0):.0f}%".strip()
        job = str(port.get("action_id") or "-")
        lines.append(
            f"{port.get('url', ''):<24} {port.get('controller_id') or '-':<32} {port.get('version') or '-':<10} "
            f"{port.get('state', ''):<12} {job:<8} {progress}"
        )
        if port.get("message"):
            lines.append(f"{'':<24} {port['message']}")
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    url = args.url
    if url is None:
        listen = DEFAULT_LISTEN
        if args.config:
            listen = load_config(args.config, server="http://unused", ports=["unused"]).listen or DEFAULT_LISTEN
        url = f"http://{listen}"
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/status", timeout=STATUS_TIMEOUT_S) as response:
            status = json.loads(response.read())
    except (OSError, urllib.error.URLError, ValueError) as err:
        raise GatewayError(f"no gateway answers at {url}: {err}", hint="is `stm32ota gateway` running? --url") from err
    if args.json:
        sys.stdout.write(json.dumps(status, indent=2) + "\n")
    else:
        sys.stdout.write(format_status(status) + "\n")
    return 0
