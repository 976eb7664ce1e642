"""Render the app's main states to PNGs: ``xvfb-run -s '-screen 0 1280x1000x24' python -m updater_gui.screenshots``.

Writes ``docs/screenshots/{connected,flashing,done,error,batch,chinese}.png`` from a real window (any Qt
platform; under Xvfb it is a real X window) driven against in-process emulators, paced like a 115200-baud wire.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
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
        try:
            _run(window, args.out)
        finally:
            window.shutdown()
            pool.close()
            window.deleteLater()
            _settle(100)
    app.quit()
    return 0


def _run(window: MainWindow, out: Path) -> None:
    window.open_file(FIRMWARE / "demo-1.0.0.signed.bin")
    window.connect_device(EMULATED)
    _wait(lambda: window.device is not None and not window.busy)
    window.flash()  # a first image, so the slot table has something to show
    _wait(lambda: not window.busy)
    window.open_file(FIRMWARE / "demo-big-1.2.0.signed.bin")
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

    window.open_file(BAD / "tampered.bin")
    window.flash()
    _shot(window, out, "error")

    window.disconnect_device()  # the tray: the main window's board is put aside
    window.open_file(FIRMWARE / "demo-1.1.0.signed.bin")
    window.tabs.setCurrentWidget(window.batch)
    window.batch.start(ports=[], emulated=4)
    _wait(lambda: not window.batch.running)
    _shot(window, out, "batch")


if __name__ == "__main__":
    raise SystemExit(main())
