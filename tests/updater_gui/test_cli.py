"""``stm32ota gui``: registered by updater_gui.cli; without PySide6 one line says how to install it."""

from __future__ import annotations

import subprocess
import sys

from protocol.cli import COMMAND_MODULES, build_parser


def test_gui_is_registered_with_its_options() -> None:
    assert COMMAND_MODULES["updater_gui.cli"] == ("gui",)
    args = build_parser(["gui"]).parse_args(["gui", "--emulator", "--language", "zh_CN"])
    assert args.handler == "updater_gui.app:cmd_gui" and args.emulator and args.language == "zh_CN"


def test_without_pyside6_one_line_says_how_to_install() -> None:
    code = (
        "import sys; sys.modules['PySide6'] = None; from protocol.cli import main; "
        "sys.exit(main(['gui', '--emulator']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == ["stm32ota: error: the desktop app needs PySide6: pip install 'stm32ota[gui]'"]
