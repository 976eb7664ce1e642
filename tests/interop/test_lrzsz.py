"""Interop with lrzsz, the reference YMODEM implementation, over real pty pairs.

lrzsz runs with its stdin/stdout on the pty *master* and our side opens the *slave* by path through
``protocol.drivers.link.SerialLink`` (pyserial), so our side runs exactly the production code path; the master has no
path a pyserial port could open.  Both ends are put in raw mode.
"""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from protocol.cli import main
from protocol.drivers.link import SerialLink
from protocol.errors import ProtocolTimeoutError, TransferAborted
from protocol.sansio import Event, Progress
from protocol.ymodem import YmodemFile, YmodemReceiver, YmodemSender
from tests.conftest import require_tool

pytestmark = pytest.mark.interop

SIZES = [0, 1, 127, 128, 129, 1023, 1024, 1025]
MIB = 1 << 20
PEER_WAIT_S = 60
# Debian's rb 0.12.21rc sometimes dies of SIGABRT (a double free) on its way out, after the file is complete;
# the files themselves are checked byte for byte.
RB_OK = (0, -signal.SIGABRT)


@dataclass
class Line:
    master: int
    slave: int
    path: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, argv: list[str], cwd: Path) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, stdin=self.master, stdout=self.master, stderr=subprocess.DEVNULL, cwd=cwd)
        self.procs.append(proc)
        return proc


@pytest.fixture
def line() -> Iterator[Line]:
    master, slave = pty.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    lin = Line(master, slave, os.ttyname(slave))
    try:
        yield lin
    finally:
        for proc in lin.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)


def _write_files(directory: Path, sizes: list[int]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, size in enumerate(sizes):
        path = directory / f"file{i}_{size}.bin"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


# -- our send -> rb ------------------------------------------------------------------------------------------
def test_send_batch_of_edge_sizes_to_rb(line: Line, tmp_path: Path) -> None:
    require_tool("rb")
    sources = _write_files(tmp_path / "src", SIZES)
    out = tmp_path / "out"
    out.mkdir()
    rb = line.spawn(["rb", "--ymodem", "-q"], out)
    assert main(["send", "-p", line.path, "-q", *map(str, sources)]) == 0
    assert rb.wait(PEER_WAIT_S) in RB_OK
    for src in sources:
        assert (out / src.name).read_bytes() == src.read_bytes(), src.name


@pytest.mark.soak  # ~12 s, nearly all of it rb's fixed 1 s waits around each EOT
def test_send_1mib_to_rb_with_128_byte_blocks_for_a_three_file_batch(line: Line, tmp_path: Path) -> None:
    require_tool("rb")
    sources = _write_files(tmp_path / "src", [MIB, 3000, 5])
    out = tmp_path / "out"
    out.mkdir()
    rb = line.spawn(["rb", "--ymodem", "-q"], out)
    assert main(["send", "-p", line.path, "-q", str(sources[0])]) == 0
    assert rb.wait(PEER_WAIT_S) in RB_OK
    rb = line.spawn(["rb", "--ymodem", "-q"], out)
    assert main(["send", "-p", line.path, "-q", "--block-size", "128", *map(str, sources[1:])]) == 0
    assert rb.wait(PEER_WAIT_S) in RB_OK
    for src in sources:
        assert (out / src.name).read_bytes() == src.read_bytes(), src.name


# -- sb -> our receive ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [*SIZES, MIB])
def test_receive_from_sb(line: Line, tmp_path: Path, size: int) -> None:
    require_tool("sb")
    (src,) = _write_files(tmp_path / "src", [size])
    out = tmp_path / "out"
    sb = line.spawn(["sb", "--ymodem", "-q", str(src)], tmp_path)
    assert main(["receive", "-p", line.path, "-d", str(out), "-q"]) == 0
    assert sb.wait(PEER_WAIT_S) == 0
    assert (out / src.name).read_bytes() == src.read_bytes()
    assert not list(out.glob("*.part"))


def test_receive_three_file_batch_from_sb(line: Line, tmp_path: Path) -> None:
    require_tool("sb")
    sources = _write_files(tmp_path / "src", [10, 70000, 0])
    out = tmp_path / "out"
    sb = line.spawn(["sb", "--ymodem", "-q", *map(str, sources)], tmp_path)
    assert main(["receive", "-p", line.path, "-d", str(out), "-q"]) == 0
    assert sb.wait(PEER_WAIT_S) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(s.name for s in sources)
    for src in sources:
        assert (out / src.name).read_bytes() == src.read_bytes()


def test_receive_refuses_to_overwrite_and_cancels_sb(
    line: Line, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_tool("sb")
    (src,) = _write_files(tmp_path / "src", [5000])
    out = tmp_path / "out"
    out.mkdir()
    (out / src.name).write_bytes(b"keep me")
    sb = line.spawn(["sb", "--ymodem", "-q", str(src)], tmp_path)
    assert main(["receive", "-p", line.path, "-d", str(out), "-q"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert sb.wait(PEER_WAIT_S) != 0  # our CAN CAN cancelled it
    assert (out / src.name).read_bytes() == b"keep me"


# -- receive never writes outside its folder -----------------------------------------------------------------
def test_receive_never_writes_through_a_symlink_at_the_partial_file(
    line: Line, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: NAME.part was opened with "wb", which followed the link and overwrote the file outside -d
    require_tool("sb")
    (src,) = _write_files(tmp_path / "src", [3000])
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not yours")
    out = tmp_path / "out"
    out.mkdir()
    (out / (src.name + ".part")).symlink_to(outside)
    sb = line.spawn(["sb", "--ymodem", "-q", str(src)], tmp_path)
    assert main(["receive", "-p", line.path, "-d", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert "refusing to write through it" in err and "hint:" in err
    sb.wait(PEER_WAIT_S)
    assert outside.read_bytes() == b"not yours"
    assert not (out / src.name).exists()


@pytest.mark.parametrize("dangling", [False, True], ids=["link-to-file", "dangling-link"])
def test_receive_overwrite_replaces_a_symlink_at_the_name_and_never_follows_it(
    line: Line, tmp_path: Path, dangling: bool
) -> None:
    require_tool("sb")
    (src,) = _write_files(tmp_path / "src", [3000])
    outside = tmp_path / "outside.txt"
    if not dangling:
        outside.write_bytes(b"not yours")
    out = tmp_path / "out"
    out.mkdir()
    (out / src.name).symlink_to(outside)
    sb = line.spawn(["sb", "--ymodem", "-q", str(src)], tmp_path)
    assert main(["receive", "-p", line.path, "-d", str(out), "-q", "--overwrite"]) == 0
    assert sb.wait(PEER_WAIT_S) == 0
    assert not (out / src.name).is_symlink()
    assert (out / src.name).read_bytes() == src.read_bytes()
    assert outside.exists() != dangling and (dangling or outside.read_bytes() == b"not yours")
    assert sorted(p.name for p in out.iterdir()) == [src.name]


def test_receive_without_overwrite_refuses_a_dangling_symlink_at_the_name(
    line: Line, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: Path.exists() follows links, so a dangling one did not count and the name was taken over
    require_tool("sb")
    (src,) = _write_files(tmp_path / "src", [3000])
    out = tmp_path / "out"
    out.mkdir()
    (out / src.name).symlink_to(tmp_path / "nowhere")
    sb = line.spawn(["sb", "--ymodem", "-q", str(src)], tmp_path)
    assert main(["receive", "-p", line.path, "-d", str(out), "-q"]) == 1
    assert "already exists" in capsys.readouterr().err
    sb.wait(PEER_WAIT_S)
    assert (out / src.name).is_symlink() and not (tmp_path / "nowhere").exists()


def test_receive_replaces_a_partial_file_left_by_an_interrupted_run(line: Line, tmp_path: Path) -> None:
    require_tool("sb")
    (src,) = _write_files(tmp_path / "src", [3000])
    out = tmp_path / "out"
    out.mkdir()
    (out / (src.name + ".part")).write_bytes(b"stale" * 1000)
    sb = line.spawn(["sb", "--ymodem", "-q", str(src)], tmp_path)
    assert main(["receive", "-p", line.path, "-d", str(out), "-q"]) == 0
    assert sb.wait(PEER_WAIT_S) == 0
    assert (out / src.name).read_bytes() == src.read_bytes()
    assert sorted(p.name for p in out.iterdir()) == [src.name]


# -- aborts, both directions -----------------------------------------------------------------------------
def _abort_when(core: YmodemSender | YmodemReceiver, after: int) -> tuple[list[int], object]:
    seen: list[int] = []

    def on_event(event: Event) -> None:
        if isinstance(event, Progress):
            seen.append(event.done)
            if event.done >= after:
                core.abort("test abort")

    return seen, on_event


def _kill_when(proc: subprocess.Popen[bytes], after: int) -> Callable[[Event], None]:
    def on_event(event: Event) -> None:
        if isinstance(event, Progress) and event.done >= after and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # lrzsz cancels with CAN CAN on its way out

    return on_event


def test_killing_rb_mid_transfer_is_an_abort_by_the_peer(line: Line, tmp_path: Path) -> None:
    require_tool("rb")
    out = tmp_path / "out"
    out.mkdir()
    rb = line.spawn(["rb", "--ymodem", "-q"], out)
    core = YmodemSender([YmodemFile("big.bin", os.urandom(MIB))], ack_timeout=2.0, max_retries=2)
    with SerialLink(line.path) as link, pytest.raises((TransferAborted, ProtocolTimeoutError)) as info:
        link.run(core, on_event=_kill_when(rb, 64 * 1024))
    # lrzsz writes CAN x10 and then flushes its tty (TCIOFLUSH): on a pty that flush sometimes discards its
    # own CANs before we can read them, and the peer is then merely silent.
    if isinstance(info.value, TransferAborted):
        assert info.value.by_peer
    assert core.finished


def test_can_can_on_the_line_stops_our_send(line: Line, tmp_path: Path) -> None:
    require_tool("rb")
    out = tmp_path / "out"
    out.mkdir()
    rb = line.spawn(["rb", "--ymodem", "-q"], out)
    core = YmodemSender([YmodemFile("big.bin", os.urandom(MIB))])

    def on_event(event: Event) -> None:
        if isinstance(event, Progress) and event.done >= 64 * 1024 and rb.poll() is None:
            rb.send_signal(signal.SIGSTOP)
            os.write(line.master, b"\x18\x18")  # what a cancelling receiver puts on the line

    with SerialLink(line.path) as link, pytest.raises(TransferAborted) as info:
        link.run(core, on_event=on_event)
    assert info.value.by_peer
    rb.kill()


def test_our_abort_cancels_rb(line: Line, tmp_path: Path) -> None:
    require_tool("rb")
    out = tmp_path / "out"
    out.mkdir()
    rb = line.spawn(["rb", "--ymodem", "-q"], out)
    core = YmodemSender([YmodemFile("big.bin", os.urandom(MIB))])
    _, on_event = _abort_when(core, 32 * 1024)
    with SerialLink(line.path) as link, pytest.raises(TransferAborted) as info:
        link.run(core, on_event=on_event)  # type: ignore[arg-type]
    assert not info.value.by_peer
    assert rb.wait(PEER_WAIT_S) != 0


def test_killing_sb_mid_transfer_is_an_abort_by_the_peer(line: Line, tmp_path: Path) -> None:
    require_tool("sb")
    (src,) = _write_files(tmp_path / "src", [MIB])
    sb = line.spawn(["sb", "--ymodem", "-q", str(src)], tmp_path)
    core = YmodemReceiver(block_timeout=1.0, max_errors=3)
    with SerialLink(line.path) as link, pytest.raises((TransferAborted, ProtocolTimeoutError)) as info:
        link.run(core, on_event=_kill_when(sb, 64 * 1024))
    if isinstance(info.value, TransferAborted):  # see test_killing_rb_mid_transfer_is_an_abort_by_the_peer
        assert info.value.by_peer


def test_can_can_on_the_line_stops_our_receive(line: Line, tmp_path: Path) -> None:
    require_tool("sb")
    (src,) = _write_files(tmp_path / "src", [MIB])
    sb = line.spawn(["sb", "--ymodem", "-q", str(src)], tmp_path)
    core = YmodemReceiver()

    def on_event(event: Event) -> None:
        if isinstance(event, Progress) and event.done >= 64 * 1024 and sb.poll() is None:
            sb.send_signal(signal.SIGSTOP)
            os.write(line.master, b"\x18\x18")

    with SerialLink(line.path) as link, pytest.raises(TransferAborted) as info:
        link.run(core, on_event=on_event)
    assert info.value.by_peer
    sb.kill()


def test_our_abort_cancels_sb(line: Line, tmp_path: Path) -> None:
    require_tool("sb")
    (src,) = _write_files(tmp_path / "src", [MIB])
    sb = line.spawn(["sb", "--ymodem", "-q", str(src)], tmp_path)
    core = YmodemReceiver()
    _, on_event = _abort_when(core, 32 * 1024)
    with SerialLink(line.path) as link, pytest.raises(TransferAborted) as info:
        link.run(core, on_event=on_event)  # type: ignore[arg-type]
    assert not info.value.by_peer
    assert sb.wait(PEER_WAIT_S) != 0
