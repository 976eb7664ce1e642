"""Render the app's main states to PNGs: ``xvfb-run -s '-screen 0 1280x1000x24' python -m updater_gui.screenshots``.

Writes ``docs/screenshots/{connected,flashing,done,error,batch,chinese,gateway}.png`` from a real window (any
Qt platform; under Xvfb it is a real X window) driven against in-process emulators, paced like a 115200-baud
wire.  The firmware files are opened from a temporary ``technician/Downloads`` folder, as a user would; the
gateway shot runs our OTA server (``stm32ota serve``) in a child process with a rollout of 1.1.0 to two
emulated boards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QDeadlineTimer, QSettings, QThread
from PySide6.QtWidgets import QApplication

from .emulated import EmulatorPool, EmulatorSpec
from .i18n import install_language
from .main_window import MainWindow
from .ports import EMULATED

__all__ = ["main"]

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "assets" / "firmware"
BAD = ROOT / "assets" / "bad"
TIMEOUT_S = 120.0


def _wait(condition: Callable[[], bool], timeout: float = TIMEOUT_S) -> None:
    deadline = QDeadlineTimer(int(timeout * 1000))
    while not condition():
        if deadline.hasExpired():
            raise TimeoutError("the app did not reach the state to capture")
        QCoreApplication.processEvents()
        QThread.msleep(10)


def _settle(ms: int = 300) -> None:
    deadline = QDeadlineTimer(ms)
    while not deadline.hasExpired():
        QCoreApplication.processEvents()
        QThread.msleep(10)


def _shot(window: MainWindow, out: Path, name: str) -> None:
    _settle()
    path = out / f"{name}.png"
    window.grab().save(str(path))
    log.info("wrote %s", path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    pool = EmulatorPool()
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings, emulators=pool, emulator_spec=EmulatorSpec(baud=115200), poll_ports=False)
        window.resize(1180, 900)
        window.show()
        downloads = Path(tmp) / "technician" / "Downloads"
        downloads.mkdir(parents=True)
        for name in ("demo-1.0.0.signed.bin", "demo-big-1.2.0.signed.bin", "demo-1.1.0.signed.bin"):
            shutil.copy(FIRMWARE / name, downloads / name)
        shutil.copy(BAD / "tampered.bin", downloads / "tampered.bin")
        try:
            _run(window, args.out, downloads)
            _gateway(window, args.out, Path(tmp))
        finally:
            window.shutdown()
            pool.close()
            window.deleteLater()
            _settle(100)
    app.quit()
    return 0


def _run(window: MainWindow, out: Path, files: Path) -> None:
    window.open_file(files / "demo-1.0.0.signed.bin")
    window.connect_device(EMULATED)
    _wait(lambda: window.device is not None and not window.busy)
    window.flash()  # a first image, so the slot table has something to show
    _wait(lambda: not window.busy)
    window.open_file(files / "demo-big-1.2.0.signed.bin")
    _shot(window, out, "connected")

    window.flash()
    _wait(lambda: ("transfer" in window.progress.format() and window.progress.value() >= 400) or not window.busy)
    _shot(window, out, "flashing")
    _wait(lambda: not window.busy)
    _shot(window, out, "done")

    install_language("zh_CN")
    _wait(lambda: window.flash_button.text() != "Flash")
    _shot(window, out, "chinese")
    install_language("en")
    _wait(lambda: window.flash_button.text() == "Flash")

    window.open_file(files / "tampered.bin")
    window.flash()
    _shot(window, out, "error")

    window.disconnect_device()  # the tray: the main window's board is put aside
    window.open_file(files / "demo-1.1.0.signed.bin")
    window.tabs.setCurrentWidget(window.batch)
    window.batch.start(ports=[], emulated=4)
    _wait(lambda: not window.batch.running)
    _shot(window, out, "batch")


def _api(url: str, token: str, method: str, path: str, *, payload: object = None, data: bytes | None = None) -> object:
    headers = {"Authorization": f"Bearer {token}"}
    body = data
    if data is not None:
        headers["Content-Type"] = "application/octet-stream"
    elif payload is not None:
        body = json.dumps(payload).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(f"{url}{path}", data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        raise RuntimeError(f"{method} {path}: {err.code} {err.read().decode(errors='replace')}") from err


def _gateway(window: MainWindow, out: Path, tmp: Path) -> None:
    """The gateway tab relaying a rollout from our server to two emulated boards, mid-transfer."""
    data = tmp / "server"
    data.mkdir()
    key = ROOT / "assets" / "keys" / "dev-ed25519-DO-NOT-USE-IN-PRODUCTION.pub.pem"
    command = [sys.executable, "-m", "protocol", "serve", "--data", str(data), "--listen", "127.0.0.1:0"]
    command += ["--poll-interval", "1", "--no-access-log", "--trusted-key", str(key)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(command, cwd=data, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert server.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(server.stdout, selectors.EVENT_READ)
            if not sel.select(60):
                raise TimeoutError("stm32ota serve did not start")
        url = server.stdout.readline().decode().strip()
        admin = (data / "admin-token").read_text().strip()
        made = _api(url, admin, "POST", "/api/v1/gateway-tokens", payload={"gateway": "bench-1", "label": "test bench"})
        assert isinstance(made, dict)
        tab = window.gateway
        window.tabs.setCurrentWidget(tab)
        tab.server_edit.setText(url)
        tab.token_edit.setText(str(made["token"]))
        tab.keys_edit.setText(str(key))
        tab.state_edit.setText(str(tmp / "technician" / ".local" / "share" / "stm32ota" / "gateway"))
        tab.emulated.setValue(2)
        tab.start()
        _wait(lambda: len(tab.model.rows) == 2 and all(r.get("controller_id") for r in tab.model.rows))
        cids = [str(r["controller_id"]) for r in tab.model.rows]
        urls = [str(r["url"]) for r in tab.model.rows]
        tab.stop()  # register the boards and bind them to this gateway, then serve them again
        _wait(lambda: not tab.running)
        for cid in cids:
            try:
                _api(url, admin, "POST", "/api/v1/devices", payload={"controller_id": cid, "chip": "0x413"})
            except RuntimeError as err:  # it registered itself through the gateway: accept it
                if "exists" not in str(err):
                    raise
                with contextlib.suppress(RuntimeError):
                    _api(url, admin, "POST", f"/api/v1/devices/{cid}/accept")
        _api(url, admin, "POST", "/api/v1/gateway-tokens", payload={"gateway": "bench-1", "devices": cids})
        tab.emulated.setValue(0)
        tab.extra_edit.setText(", ".join(urls))
        tab.log_console.model.clear()
        tab.start()
        _wait(lambda: len(tab.model.rows) == 2 and all(r.get("state") == "idle" for r in tab.model.rows))
        big = (FIRMWARE / "demo-big-1.2.0.signed.bin").read_bytes()
        _api(url, admin, "POST", "/api/v1/releases?filename=demo-big-1.2.0.signed.bin", data=big)
        _api(url, admin, "POST", "/api/v1/rollouts", payload={"release": "1.2.0", "percentages": [100]})

        def moving(row: dict[str, object]) -> bool:
            return row.get("phase") == "transfer" and float(str(row.get("progress") or 0)) > 0.25

        def updated(row: dict[str, object]) -> bool:
            return row.get("version") == "1.2.0" and row.get("state") == "idle"

        try:  # the rollout's canary is done, the second board mid-transfer
            _wait(lambda: any(moving(r) for r in tab.model.rows) and any(updated(r) for r in tab.model.rows))
        except TimeoutError:
            log.warning("gateway rows: %s", tab.model.rows)
            log.warning("gateway log: %s", [r.text for r in tab.log_console.model.records()][-15:])
            raise
        _shot(window, out, "gateway")
        tab.stop()
        _wait(lambda: not tab.running)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


if __name__ == "__main__":
    raise SystemExit(main())
