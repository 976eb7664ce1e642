"""``stm32ota gui``: registered by updater_gui.cli (entry point ``gui``); without PySide6 one line says how to
install it."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from updater_gui.cli import register

ROOT = Path(__file__).resolve().parents[2]

# Until the package is reinstalled from this tree, the installed metadata may predate the gui entry point:
# add it the way importlib.metadata would have.
_WITH_ENTRY_POINT = (
    "import protocol.cli as cli; from updater_gui.cli import register; "
    "found = cli.plugin_families(); "
    "found.setdefault('updater_gui.cli:register', (lambda: register, ('gui',))); "
    "cli.plugin_families = lambda: found; "
)


def test_pyproject_declares_the_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["stm32ota.commands"]["gui"] == "updater_gui.cli:register"
    (gui,) = project["project"]["optional-dependencies"]["gui"]
    assert gui == "PySide6-Essentials>=6.11,<6.13"
    assert gui in project["project"]["optional-dependencies"]["test"]  # the README's two commands test the GUI
    import PySide6
    from packaging.specifiers import SpecifierSet

    assert PySide6.__version__ in SpecifierSet(gui.removeprefix("PySide6-Essentials")), "the pin excludes this Qt"
    assert not any("PySide6" in dep for dep in project["project"]["dependencies"])


def test_gui_registers_its_options() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["gui", "--emulator", "--language", "zh_CN"])
    assert args.handler == "updater_gui.app:cmd_gui" and args.emulator and args.language == "zh_CN"


def test_without_pyside6_one_line_says_how_to_install() -> None:
    code = (
        "import sys; sys.modules['PySide6'] = None; " + _WITH_ENTRY_POINT + "sys.exit(cli.main(['gui', '--emulator']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == ["stm32ota: error: the desktop app needs PySide6: pip install 'stm32ota[gui]'"]


def test_the_app_starts_in_a_real_x_window_under_xvfb(tmp_path: Path) -> None:
    from tests.conftest import require_tool

    xvfb = require_tool("xvfb-run", "apt-get install xvfb")
    code = (
        _WITH_ENTRY_POINT
        + "sys_exit = cli.main(['-v', 'gui', '--emulator', '--quit-after', '4']); raise SystemExit(sys_exit)"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "XDG_CONFIG_HOME": str(tmp_path)}  # QSettings there
    result = subprocess.run(
        [xvfb, "-a", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "connected to" in result.stderr.lower(), result.stderr[-2000:]
