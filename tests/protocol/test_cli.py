"""The ``stm32ota`` command: one entry point, lazy subcommands, one way to fail."""

from __future__ import annotations

import subprocess
import sys

import pytest

from protocol.cli import main

EXPECTED = (
    "send",
    "receive",
    "info",
    "flash",
    "monitor",
    "keygen",
    "getpub",
    "sign",
    "verify",
    "inspect",
    "emulate",
    "demo",
    "ports",
    "reset",
    "confirm",
    "rollback",
    "erase",
    "read",
    "terminal",
)


def test_help_lists_every_subcommand() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "protocol", "--help"], capture_output=True, text=True, check=True
    )
    for name in EXPECTED:
        assert f"    {name} " in out.stdout or f"    {name}\n" in out.stdout, name


def test_building_the_parser_imports_no_qt_aiohttp_or_serial() -> None:
    code = (
        "import sys; from protocol.cli import build_parser; build_parser(); "
        "bad = [m for m in ('PySide6', 'aiohttp', 'serial') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_send_path_imports_no_qt_or_aiohttp() -> None:
    code = (
        "import sys, importlib; importlib.import_module('protocol.ymodem_commands'); "
        "importlib.import_module('protocol.update_commands'); "
        "bad = [m for m in ('PySide6', 'aiohttp') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_subcommand_prints_usage_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_port_error_is_one_line_with_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "-p", "/dev/no-such-tty-stm32ota"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("stm32ota: error: no such port")
    assert "hint:" in err


def test_each_module_registers_exactly_the_commands_the_registry_names() -> None:
    import argparse
    import importlib

    from protocol.cli import COMMAND_MODULES

    for module_name, names in COMMAND_MODULES.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            assert names == (), f"{module_name} is not installed but claims {names}"
            continue
        sub = argparse.ArgumentParser().add_subparsers()
        module.register(sub)
        assert tuple(sub.choices) == names, module_name


def test_running_a_command_builds_only_its_own_module_s_parser() -> None:
    from protocol.cli import build_parser

    parser = build_parser(["-v", "send", "-p", "loop://", "x"])
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert set(subparsers.choices or ()) == {"send", "receive"}
    every = next(a for a in build_parser(["--help"])._actions if a.dest == "command")
    assert set(EXPECTED) <= set(every.choices or ())
    unknown = next(a for a in build_parser(["frobnicate"])._actions if a.dest == "command")
    assert set(EXPECTED) <= set(unknown.choices or ())  # so argparse's error lists every command
