"""The gateway tab against our OTA server: a release and a rollout for an emulated STM32F407, the gateway started
from the tab, the port's row through download and transfer to the new version, then stopped.  And the form's
errors: sentences in the tab, nothing started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.relay.gateway.conftest import DEV_PUB, NEW, cid_for, emulated_device, primary_version
from tests.relay.gateway.ourserver import START_TIMEOUT_S, server_tree
from updater_gui.gateway_tab import GatewayPortModel
from updater_gui.operations import DEVICE

WAIT_MS = 90_000


class _Server:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    def api(self, method: str, path: str, payload: Any = None, *, data: bytes | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        body = data
        if data is not None:
            headers["Content-Type"] = "application/octet-stream"
        elif payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(f"{self.url}{path}", data=body, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")


@contextmanager
def our_server(data: Path) -> Iterator[_Server]:
    """``stm32ota serve`` in a child process (as tests/relay/gateway/ourserver.py starts it, without asyncio)."""
    tree = server_tree()
    data.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "protocol", "serve", "--data", str(data), "--listen", "127.0.0.1:0"]
    command += ["--poll-interval", "1", "--no-access-log", "--trusted-key", str(DEV_PUB)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    process = subprocess.Popen(command, cwd=data, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        import selectors

        with selectors.DefaultSelector() as sel:
            sel.register(process.stdout, selectors.EVENT_READ)
            assert sel.select(START_TIMEOUT_S), "stm32ota serve did not start"
        url = process.stdout.readline().decode().strip()
        assert url.startswith("http://"), url
        yield _Server(url, (data / "admin-token").read_text().strip())
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_gateway_tab_relays_a_rollout_to_an_emulated_device(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tab = window.gateway
    tab.runner.time_factor = 0.05  # the gateway's own waits (cancel checks), as the gateway's tests shrink them
    seen: list[tuple[str, str, str]] = []
    tab.runner.signals.status.connect(lambda rows: seen.extend((r["state"], r["phase"], r["version"]) for r in rows))
    cid = cid_for(41)
    with emulated_device(tmp_path / "device", 41, baud=115200) as emu, our_server(tmp_path / "server") as server:
        server.api("POST", "/api/v1/devices", {"controller_id": cid, "chip": "0x413"})
        token = server.api("POST", "/api/v1/gateway-tokens", {"gateway": "gui", "devices": [cid]})["token"]
        server.api("POST", "/api/v1/releases?filename=demo-1.1.0.signed.bin", data=NEW)
        server.api("POST", "/api/v1/rollouts", {"release": "1.1.0", "percentages": [100]})

        window.tabs.setCurrentWidget(tab)
        tab.server_edit.setText(server.url)
        tab.token_edit.setText(token)
        tab.keys_edit.setText(str(DEV_PUB))
        tab.state_edit.setText(str(tmp_path / "gateway"))
        tab.extra_edit.setText(emu.port)
        with qtbot.waitSignal(tab.runner.signals.started, timeout=WAIT_MS):
            assert tab.start()
        assert not tab.start_button.isEnabled() and tab.stop_button.isEnabled()
        assert not tab.server_edit.isEnabled()  # the form is locked while the gateway runs
        qtbot.waitUntil(lambda: tab.model.rowCount() == 1 and tab.model.rows[0]["controller_id"], timeout=WAIT_MS)
        qtbot.waitUntil(lambda: tab.model.index(0, 7).data() == "updated to 1.1.0", timeout=WAIT_MS)
        row = tab.model.rows[0]
        assert row["version"] == "1.1.0" and row["state"] == "idle", row
        shown = [tab.model.index(0, c).data() for c in range(GatewayPortModel.COLUMNS)]
        assert shown[0] == emu.port and shown[1] == cid and shown[2] == "1.1.0" and shown[6] == "100 %", shown
        assert "Running" in tab.state_value.text()
        with qtbot.waitSignal(tab.runner.signals.stopped, timeout=WAIT_MS):
            tab.stop()
        assert tab.start_button.isEnabled() and not tab.stop_button.isEnabled()
        assert tab.state_value.text() == "Stopped." and tab.last_error is None
        lines = [r.text for r in tab.log_console.model.records()]
        assert any(cid in line for line in lines), lines  # the gateway's own log reached the tab
        board = [r for r in tab.log_console.model.records() if r.source == DEVICE]
        assert board and all(r.text.startswith(f"{cid}: ") for r in board), lines  # and the board's, named
        assert {r.level for r in board} <= {"error", "warning", "info", "debug"}
        assert primary_version(emu) == ("1.1.0+0", "confirmed")
    states = [state for state, _phase, _version in seen]
    phases = [phase for _state, phase, _version in seen]
    assert "relaying" in states, seen  # the download of a small file may fall between two looks
    assert "transfer" in phases, seen  # paced at 115200 baud: the transfer spans many looks


@pytest.mark.usefixtures("qapp")
def test_the_gateway_forms_errors_are_sentences_and_start_nothing(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tab = window.gateway
    assert not tab.start()
    assert "server" in tab.state_value.text() and not tab.runner.running
    tab.server_edit.setText("http://127.0.0.1:9")
    assert not tab.start()
    assert "no serial ports" in tab.state_value.text()
    tab.server_edit.setText("ftp://nowhere")  # the gateway's own ConfigError, from its thread, as a sentence
    tab.extra_edit.setText(str(tmp_path / "ttyUSB9"))
    tab.state_edit.setText(str(tmp_path / "gw"))
    with qtbot.waitSignal(tab.runner.signals.stopped, timeout=WAIT_MS):
        assert tab.start()
    assert tab.last_error is not None and "http:// or https://" in tab.state_value.text()
    assert "Traceback" not in tab.state_value.text() and tab.start_button.isEnabled()


def test_a_missing_port_is_a_row_that_says_so(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tab = window.gateway
    missing = str(tmp_path / "ttyUSB7")
    tab.server_edit.setText("http://127.0.0.1:9")  # no server: the gateway keeps its outbox and the port's row
    tab.extra_edit.setText(missing)
    tab.state_edit.setText(str(tmp_path / "gw"))
    assert tab.start()
    qtbot.waitUntil(lambda: bool(tab.model.rows) and tab.model.rows[0]["state"] == "absent", timeout=WAIT_MS)
    assert tab.model.index(0, 3).data() == "no device"
    assert "no such port" in tab.model.rows[0]["message"] or "There is no port" in tab.model.index(0, 7).data()
    window.set_language("zh_CN")
    try:
        qtbot.waitUntil(lambda: tab.start_button.text() != "Start gateway", timeout=5000)
        assert tab.model.index(0, 3).data() != "no device"  # the state column follows the language
    finally:
        window.set_language("en")
    with qtbot.waitSignal(tab.runner.signals.stopped, timeout=WAIT_MS):
        tab.stop()
