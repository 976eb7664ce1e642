"""The Simplified Chinese translation: in step with the code, compiled, switchable at run time."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import require_tool
from updater_gui.i18n import install_language
from updater_gui.i18n.update import lrelease, lupdate, ts_path


def test_ts_has_every_string_of_the_code_translated(tmp_path: Path) -> None:
    require_tool("pyside6-lupdate", "pip install PySide6-Essentials")
    ts = tmp_path / "check.ts"
    shutil.copy(ts_path("zh_CN"), ts)
    lupdate(ts)
    messages = list(ET.parse(ts).getroot().iter("message"))
    assert messages
    unfinished = [m.findtext("source") for m in messages if m.find("translation").get("type") == "unfinished"]
    assert not unfinished, f"untranslated (run python -m updater_gui.i18n.update, then Qt Linguist): {unfinished}"
    assert ts.read_bytes() == ts_path("zh_CN").read_bytes(), "the .ts is stale: python -m updater_gui.i18n.update"


def test_qm_is_compiled_from_the_ts(tmp_path: Path) -> None:
    require_tool("pyside6-lrelease", "pip install PySide6-Essentials")
    qm = tmp_path / "check.qm"
    lrelease(ts_path("zh_CN"), qm)
    assert qm.read_bytes() == ts_path("zh_CN").with_suffix(".qm").read_bytes(), "run python -m updater_gui.i18n.update"


@pytest.mark.usefixtures("qapp")
def test_switching_language_retranslates_the_window(qtbot, window) -> None:
    assert window.flash_button.text() == "Flash"
    window.set_language("zh_CN")
    try:
        qtbot.waitUntil(lambda: window.flash_button.text() == "烧录", timeout=5000)  # LanguageChange is posted
        assert window.connection_box.title() == "连接"
        assert window.tabs.tabText(0) == "设备日志"
        assert window.log_console.pause.text() == "暂停滚动"
        assert window.settings.value("language") == "zh_CN"
    finally:
        window.set_language("en")
    qtbot.waitUntil(lambda: window.flash_button.text() == "Flash", timeout=5000)
    assert install_language("xx") is False


def test_settings_persist(qtbot, window) -> None:
    window.baud_combo.setCurrentText("921600")
    window.url_edit.setText("socket://127.0.0.1:7000")
    window._save_settings()
    from PySide6.QtCore import QSettings

    from updater_gui.main_window import MainWindow

    again = MainWindow(QSettings(window.settings.fileName(), QSettings.Format.IniFormat), poll_ports=False)
    qtbot.addWidget(again)
    try:
        assert again.baud() == 921600
        assert again.url_edit.text() == "socket://127.0.0.1:7000"
    finally:
        again.shutdown()
