"""``stm32ota send`` / ``receive``: every failure a user can reach without a peer ends in one actionable line."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.cli import build_parser, main


def test_send_and_receive_are_registered() -> None:
    args = build_parser().parse_args(["send", "-p", "loop://", "--block-size", "128", "a", "b"])
    assert args.handler == "protocol.cli.ymodem_commands:cmd_send"
    assert args.files == ["a", "b"] and args.block_size == 128
    args = build_parser().parse_args(["receive", "-p", "loop://", "-d", "x", "--overwrite"])
    assert args.handler == "protocol.cli.ymodem_commands:cmd_receive"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["send", "-p", "loop://", "--block-size", "512", "a"])


def test_send_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", "-p", "loop://", str(tmp_path / "nope.bin")]) == 1
    err = capsys.readouterr().err
    assert "cannot read" in err and "nope.bin" in err and "hint:" in err


def test_send_missing_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "fw.bin"
    image.write_bytes(b"x")
    assert main(["send", "-p", str(tmp_path / "ttyNOPE"), str(image)]) == 1
    err = capsys.readouterr().err
    assert "no such port" in err and "hint:" in err


def test_receive_into_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["receive", "-p", "loop://", "-d", str(blocker / "sub")]) == 1
    assert "cannot create" in capsys.readouterr().err


def test_receive_gives_up_when_no_sender_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # loop:// echoes our own 'C' back: no sender ever answers, so after --wait we stop with a hint
    assert main(["receive", "-p", "loop://", "-d", str(tmp_path), "--wait", "0.001", "-q"]) == 1
    err = capsys.readouterr().err
    assert "no YMODEM sender" in err or "gave up" in err
