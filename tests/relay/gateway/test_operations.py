"""/healthz, /metrics, /status on the gateway's local port, `stm32ota gateway status`, and the CLI's errors."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from emulator.testing import EmulatorHandle
from relay.gateway import ConfigError, GatewayError
from relay.gateway.commands import cmd_status, config_from_args, format_status
from relay.gateway_cli import register

from .conftest import DEV_PUB, gateway_for, wait_for
from .ourserver import running_server


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["gateway", *argv])


async def test_health_metrics_and_status_with_a_missing_port_and_no_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "ttyUSB9")
    async with gateway_for("http://127.0.0.1:9", [missing], tmp_path / "gw") as gateway:
        worker = gateway.workers[0]
        await wait_for(lambda: worker.status.state == "absent", "the port reported absent")
        assert gateway.status_url is not None
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{gateway.status_url}/healthz") as response:
                assert response.status == 200
                assert await response.json() == {"status": "ok", "ports": 1, "backlog": 0}
            async with http.get(f"{gateway.status_url}/metrics") as response:
                metrics = await response.text()
        assert 'stm32ota_gateway_ports{state="absent"} 1.0' in metrics
        assert "stm32ota_gateway_outbox_backlog 0.0" in metrics
        args = argparse.Namespace(url=gateway.status_url, json=False, config=None)
        assert await asyncio.to_thread(cmd_status, args) == 0
    shown = capsys.readouterr().out
    assert missing in shown and "absent" in shown


def test_status_without_a_gateway_is_a_clear_error() -> None:
    with pytest.raises(GatewayError, match="no gateway answers"):
        cmd_status(argparse.Namespace(url="http://127.0.0.1:9", json=False, config=None))


def test_format_status_shows_each_port() -> None:
    text = format_status(
        {
            "gateway": "g",
            "server": "http://s",
            "ports": [
                {
                    "url": "/dev/ttyUSB0",
                    "controller_id": "stm32-ab",
                    "version": "1.0.0",
                    "state": "relaying",
                    "action_id": "5",
                    "phase": "transfer",
                    "progress": 0.42,
                    "message": "",
                }
            ],
        }
    )
    assert "stm32-ab" in text and "transfer 42%" in text and "relaying" in text


def test_cli_flag_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="CID=TOKEN"):
        config_from_args(_args("--server", "http://s", "-p", "/dev/x", "--target-token", "nonsense"))
    with pytest.raises(ConfigError, match="no serial ports"):
        config_from_args(_args("--server", "http://s"))
    config = config_from_args(_args("--server", "http://s", "-p", "/dev/x", "--target-token", "stm32-a=t"))
    assert config.token_for("stm32-a") == "TargetToken t"


async def test_a_wrong_token_is_one_warning_with_a_hint_however_often_it_is_retried(
    devices: Callable[..., EmulatorHandle], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    emu = devices(1)
    caplog.set_level(logging.DEBUG, logger="relay.gateway")
    async with running_server(tmp_path / "server", DEV_PUB) as server:
        gateway = gateway_for(server.url, [emu.port], tmp_path / "gw", gateway_token="wrong")
        async with gateway:
            worker = gateway.workers[0]
            await wait_for(lambda: worker.status.state == "error", "the refusal")
            await wait_for(lambda: any("(again)" in r.getMessage() for r in caplog.records), "a retry", 60)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "port" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "HTTP 401" in warnings[0] and "check the gateway token" in warnings[0]
    assert not any(r.exc_info for r in caplog.records)  # a sentence, never a traceback


def test_a_listen_address_that_cannot_be_had_stops_the_start_cleanly(tmp_path: Path) -> None:
    async def start() -> None:
        async with gateway_for("http://127.0.0.1:9", ["/dev/null"], tmp_path / "gw", listen="192.0.2.1:1"):
            pass

    with pytest.raises(ConfigError, match=r"cannot listen on 192\.0\.2\.1:1"):
        asyncio.run(start())


def test_json_logs_are_one_object_a_line() -> None:
    import json

    from relay.gateway.commands import JsonLogFormatter

    record = logging.LogRecord("relay.gateway.relay", logging.WARNING, __file__, 1, "port %s: %s", ("p", "gone"), None)
    entry = json.loads(JsonLogFormatter().format(record))
    assert (entry["level"], entry["logger"], entry["message"]) == ("warning", "relay.gateway.relay", "port p: gone")
    assert entry["time"].endswith("+00:00")
    assert "device" not in entry


def test_a_boards_log_line_carries_its_device_in_json_logs() -> None:
    import json

    from relay.gateway.commands import JsonLogFormatter
    from relay.gateway.relay import device_log

    record = device_log.makeRecord(
        device_log.name, logging.INFO, __file__, 1, "%s: %s", ("stm32-ab", "boot ok"), None,
        extra={"device": "stm32-ab", "device_level": "warning", "device_ms": 1234},
    )  # fmt: skip
    entry = json.loads(JsonLogFormatter().format(record))
    assert entry["message"] == "stm32-ab: boot ok" and entry["logger"] == "relay.gateway.device"
    assert (entry["device"], entry["device_level"], entry["device_ms"]) == ("stm32-ab", "warning", 1234)
