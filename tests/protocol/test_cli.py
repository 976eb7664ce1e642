"""The ``stm32ota`` command: one entry point, lazy subcommands, one way to fail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from protocol.cli import build_parser, main

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
    out = subprocess.run([sys.executable, "-m", "protocol", "--help"], capture_output=True, text=True, check=True)
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
        "import sys, importlib; importlib.import_module('protocol.cli.ymodem_commands'); "
        "importlib.import_module('protocol.cli.update_commands'); "
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


def _registered(register: object) -> set[str]:
    import argparse

    sub = argparse.ArgumentParser().add_subparsers()
    register(sub)  # type: ignore[operator]
    return set(sub.choices)


def test_each_builtin_family_registers_exactly_the_commands_it_declares() -> None:
    import importlib

    from protocol.cli import FAMILIES

    for module_name, names in FAMILIES.items():
        assert _registered(importlib.import_module(module_name).register) == set(names), module_name


def test_each_entry_point_names_exactly_the_commands_its_register_adds() -> None:
    from protocol.cli import plugin_families

    families = plugin_families()
    assert families, "no stm32ota.commands entry points: is the package installed (pip install -e .)?"
    for value, (load, names) in families.items():
        assert _registered(load()) == set(names), value
    declared = [name for _, names in families.values() for name in names]
    assert {"emulate", "demo"} <= set(declared)
    assert len(declared) == len(set(declared)), "one subcommand declared by two entry points"


def test_protocol_names_none_of_the_packages_built_on_it() -> None:
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "protocol"
    dependents = {"emulator", "relay", "updater_gui"}
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [node.value.split(":")[0]] if ":" in node.value or "." in node.value else []
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in dependents, f"{path.relative_to(root)} names {name}"


def test_running_a_command_builds_only_its_own_module_s_parser() -> None:
    from protocol.cli import build_parser

    parser = build_parser(["-v", "send", "-p", "loop://", "x"])
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert set(subparsers.choices or ()) == {"send", "receive"}
    every = next(a for a in build_parser(["--help"])._actions if a.dest == "command")
    assert set(EXPECTED) <= set(every.choices or ())
    unknown = next(a for a in build_parser(["frobnicate"])._actions if a.dest == "command")
    assert set(EXPECTED) <= set(unknown.choices or ())  # so argparse's error lists every command


# -- every mistake a clear error ------------------------------------------------------------------------------
@pytest.mark.parametrize("baud", ["0", "-9600", "12345678901", "fast", "49"])
@pytest.mark.parametrize(
    "command",
    [["info"], ["flash", "fw.bin"], ["monitor"], ["send", "fw.bin"], ["receive"]],
    ids=lambda c: c[0],
)
def test_an_unsupported_baud_rate_is_a_usage_error_of_the_command(
    command: list[str], baud: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: ZeroDivisionError (info/flash/monitor), a hang of minutes (send), OverflowError (huge rates)
    with pytest.raises(SystemExit) as exit_info:
        main([command[0], "-p", "loop://", "-b", baud, *command[1:]])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: stm32ota {command[0]} ")
    assert "argument -b/--baud:" in err and ("not a supported baud rate" in err or "not a baud rate" in err)
    assert "Traceback" not in err


@pytest.mark.parametrize("baud", ["0", "12345678901", "fast"])
def test_an_unsupported_fast_baud_is_a_usage_error_too(baud: str, capsys: pytest.CaptureFixture[str]) -> None:
    # before: --fast-baud was a plain int, so 0 or 12345678901 reached the baud switch mid-update
    with pytest.raises(SystemExit) as exit_info:
        main(["flash", "-p", "loop://", "--fast-baud", baud, "fw.bin"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: stm32ota flash ") and "argument --fast-baud:" in err
    assert "Traceback" not in err


def test_the_drivers_and_the_command_line_share_one_baud_range() -> None:
    import protocol.baud
    from protocol.drivers import link
    from protocol.update import constants

    # before: link.py had its own DEFAULT_BAUD/MIN_BAUD/MAX_BAUD/check_baud (a wider range than the CLI's)
    assert link.check_baud is protocol.baud.check_baud
    assert (link.DEFAULT_BAUD, link.MIN_BAUD, link.MAX_BAUD) == (
        protocol.baud.DEFAULT_BAUD,
        protocol.baud.MIN_BAUD,
        protocol.baud.MAX_BAUD,
    )
    assert constants.DEFAULT_BAUD == protocol.baud.DEFAULT_BAUD


def test_baud_rates_in_range_are_accepted() -> None:
    from protocol.baud import MAX_BAUD, MIN_BAUD

    for baud in (MIN_BAUD, 9600, 921600, MAX_BAUD):
        args = build_parser(["info"]).parse_args(["info", "-p", "loop://", "-b", str(baud)])
        assert args.baud == baud


def test_check_baud_refuses_what_a_port_cannot_be_opened_at() -> None:
    from protocol.baud import check_baud
    from protocol.errors import BaudRateError, PortError

    assert check_baud(115200) == 115200
    for bad in (0, -1, 12345678901, 12_000_001, True):
        with pytest.raises(BaudRateError, match="unsupported baud rate") as err:
            check_baud(bad)  # type: ignore[arg-type]
        assert isinstance(err.value, PortError) and isinstance(err.value, ValueError)


def _verbosity(argv: list[str]) -> tuple[int, bool]:
    from protocol.cli.options import TRACE_AFTER, VERBOSE_AFTER

    args = build_parser(argv).parse_args(argv)
    return args.verbose + getattr(args, VERBOSE_AFTER, 0), args.trace or getattr(args, TRACE_AFTER, False)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-v", "flash", "-p", "x", "fw.bin"], (1, False)),
        (["flash", "-v", "-p", "x", "fw.bin"], (1, False)),
        (["flash", "-p", "x", "fw.bin", "-vv"], (2, False)),
        (["-vv", "info", "-p", "x"], (2, False)),
        (["-v", "info", "-p", "x", "-v", "--trace"], (2, True)),
        (["--trace", "send", "-p", "x", "a"], (0, True)),
        (["send", "-p", "x", "a", "--trace"], (0, True)),
        (["receive", "--verbose", "-p", "x"], (1, False)),
        (["emulate", "-v"], (1, False)),
    ],
)
def test_options_work_before_or_after_the_subcommand(argv: list[str], expected: tuple[int, bool]) -> None:
    assert _verbosity(argv) == expected


def test_a_subcommand_that_owns_v_keeps_it() -> None:
    args = build_parser(["sign"]).parse_args(["sign", "-v", "1.2.3", "-S", "0x1000", "--verbose", "in", "out"])
    assert args.version == "1.2.3"
    assert _verbosity(["sign", "-v", "1.2.3", "-S", "0x1000", "--verbose", "in", "out"]) == (1, False)


@pytest.mark.parametrize(
    "argv",
    [
        ["send", "-p", "loop://", "--bogus", "fw.bin"],
        ["send", "-p", "loop://", "--block-size", "512", "fw.bin"],
        ["flash", "-p", "loop://"],
        ["info", "-p", "loop://", "extra"],
        ["keygen", "-k", "k.pem", "-t", "rsa"],
    ],
)
def test_a_usage_error_shows_the_subcommand_s_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: stm32ota {argv[0]} "), err
    assert f"stm32ota {argv[0]}: error:" in err


def _raise(exc: BaseException) -> object:
    def handler(_args: object) -> int:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("exc", "code", "text"),
    [
        (OSError(5, "Input/output error", "/dev/ttyUSB0"), 1, "stm32ota: error: /dev/ttyUSB0: Input/output error"),
        (BrokenPipeError(32, "Broken pipe"), 1, "stm32ota: error: Broken pipe"),
        (PermissionError(13, "Permission denied", "out.bin"), 1, "stm32ota: error: out.bin: Permission denied"),
        (KeyboardInterrupt(), 130, "stm32ota: interrupted"),
    ],
    ids=["oserror", "brokenpipe", "permission", "ctrl-c"],
)
def test_os_errors_and_ctrl_c_in_a_command_are_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], exc: BaseException, code: int, text: str
) -> None:
    import protocol.cli

    monkeypatch.setattr(protocol.cli, "_resolve", lambda _name: _raise(exc))
    assert main(["info", "-p", "loop://"]) == code
    err = capsys.readouterr().err
    assert err.splitlines() == [text]


def test_a_serial_exception_in_a_command_is_one_line_with_a_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import serial

    import protocol.cli

    error = serial.SerialException("device reports readiness to read but returned no data")
    monkeypatch.setattr(protocol.cli, "_resolve", lambda _name: _raise(error))
    assert main(["info", "-p", "loop://"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "stm32ota: error: serial port: device reports readiness to read but returned no data"
    assert len(lines) == 2 and lines[1].startswith("  hint: ")


@pytest.mark.parametrize("where", ["before", "after"])
def test_vv_adds_debug_output_to_info_and_flash(where: str, tmp_path: Path) -> None:
    from emulator.demo import demo_firmware
    from emulator.testing import running_emulator

    image = demo_firmware("demo-1.1.0.signed.bin")
    with running_emulator("ota", baud=0, time_scale=0) as emu:
        for command in (["info"], ["flash", "-q", str(image)]):
            argv = [command[0], "-p", emu.port, *command[1:]]
            argv = ["-vv", *argv] if where == "before" else [*argv, "-vv"]
            out = subprocess.run(
                [sys.executable, "-m", "protocol", *argv], capture_output=True, text=True, timeout=120, check=False
            )
            assert out.returncode == 0, out.stderr
            debug = [line for line in out.stderr.splitlines() if line.startswith("DEBUG ")]
            assert any("-> INFO" in line for line in debug), out.stderr
            if command[0] == "flash":
                assert any("-> VERIFY" in line for line in debug), out.stderr
