"""Start the desktop app (``stm32ota gui``)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from protocol.errors import Stm32OtaError

__all__ = ["INSTALL_HINT", "GuiUnavailable", "cmd_gui", "create_app"]

log = logging.getLogger(__name__)

INSTALL_HINT = "the desktop app needs PySide6: pip install 'stm32ota[gui]'"


class GuiUnavailable(Stm32OtaError):
    """PySide6 is not installed."""


def _require_qt() -> None:
    try:
        import PySide6  # noqa: F401
    except ImportError:
        raise GuiUnavailable(INSTALL_HINT) from None


def create_app(argv: list[str] | None = None) -> object:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    from . import qtfix

    qtfix.install()
    app.setApplicationName("stm32ota updater")
    app.setOrganizationName("stm32ota")
    return app


def cmd_gui(args: argparse.Namespace) -> int:
    _require_qt()
    from PySide6.QtCore import QSettings

    from .emulated import EmulatorSpec
    from .i18n import install_language, system_language
    from .main_window import MainWindow
    from .ports import EMULATED

    app = create_app()
    settings = QSettings("stm32ota", "updater")
    language = args.language or str(settings.value("language", system_language()))
    install_language(language)
    window = MainWindow(settings, emulator_spec=EmulatorSpec(mode=args.emulator_mode))
    if args.baud:
        window.baud_combo.setCurrentText(str(args.baud))
    if args.image:
        window.open_file(Path(args.image))
    window.show()
    if args.emulator:
        window.connect_device(EMULATED)
    elif args.port:
        window.connect_device(args.port)
    window.device_changed.connect(lambda device: _report(window, device))
    if args.quit_after is not None:  # smoke tests: a real window for a few seconds, then exit cleanly
        from PySide6.QtCore import QTimer

        QTimer.singleShot(int(args.quit_after * 1000), window.close)
    code = int(app.exec())  # type: ignore[attr-defined]
    window.shutdown()
    return code


def _report(window: object, device: object) -> None:
    target = getattr(window, "target", None)
    if device is not None and target is not None:
        log.info("connected to %s (%s)", target.url, getattr(device, "kind", "?"))
