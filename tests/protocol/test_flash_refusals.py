"""``stm32ota flash`` refuses every wrong file before anything is erased or sent, and installs a good one.

For each bad asset and each wrong-for-this-device image (made by our ``sign`` and by the real ``imgtool``)
the command fails with the check's reason, and both slots read back byte-identical through the emulator's
flash, with no erase counted.  A good image padded to this slot's size (``--pad -S 0x60000``), and a signed
image in .hex/.srec form, install.
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.chips import CHIPS
from emulator.demo import factory_program
from emulator.testing import EmulatorHandle, running_emulator
from protocol.cli import main
from protocol.image import HardwareTag, load_private_key, sign_image, to_intel_hex
from tests.conftest import require_tool

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "assets" / "firmware"
BAD = REPO / "assets" / "bad"
SLOT_RULES = BAD / "slot-rules"
KEY = REPO / "assets" / "keys" / "dev-ed25519-DO-NOT-USE-IN-PRODUCTION.pem"
PUB = REPO / "assets" / "keys" / "dev-ed25519-DO-NOT-USE-IN-PRODUCTION.pub.pem"
UNTRUSTED = BAD / "untrusted-ed25519-DO-NOT-USE.pem"
F407 = CHIPS["stm32f407vg"]
OLD = (FIRMWARE / "demo-1.0.0.signed.bin").read_bytes()  # running: 1.0.0, security counter 1
RAW = (FIRMWARE / "demo-1.1.0.bin").read_bytes()  # the raw application, linked for 0x08020200
SLOT = F407.layout.secondary[1]
TAG = HardwareTag(chip_id=0x413, board_id=1)
BASE = {"header_size": 0x200, "pad_header": True, "align": 4, "slot_size": SLOT, "hw_tag": TAG}

# bad asset -> the reason flash prints (assets/bad/README.md)
BAD_REASONS = {
    "tampered.bin": "digest-mismatch",
    "wrong-key.bin": "unknown-key",
    "wrong-chip.bin": "wrong-chip",
    "wrong-board.bin": "wrong-board",
    "security-counter-0.bin": "security-counter",  # 1.1.1 over 1.0.0 (counter 1) with counter 0
    "truncated.bin": "truncated",
    "bad-magic.bin": "bad-magic",
    "tlv-overrun.bin": "tlv-overrun",
    "huge-size.bin": "too-large",
    "bad-signature.bin": "bad-signature",
    "unsigned.bin": "missing-tlv",
    "no-hw-tag.bin": "missing-tlv",
    "wrong-key-type.bin": "wrong-key-type",
    "unprotected-tlv.bin": "bad-tlv",
    "non-bootable.bin": "non-bootable",
    "padded-128k.bin": "misplaced-trailer",
    "rom-fixed-bootloader.bin": "rom-fixed",
    "lower-version.bin": "downgrade",
}


def _ours(**options: object) -> bytes:
    key = load_private_key(KEY.read_bytes())
    opts: dict[str, object] = {**BASE, "version": "1.2.0", "security_counter": 2, **options}
    return sign_image(RAW, key, **opts)  # type: ignore[arg-type]


def _imgtool(tmp: Path, name: str, *extra: str, key: Path | None = KEY, version: str = "1.2.0") -> Path:
    exe = require_tool("imgtool", "pip install imgtool")
    raw = tmp / "app.bin"
    raw.write_bytes(RAW)
    out = tmp / name
    args = [exe, "sign", "-H", "0x200", "--pad-header", "--align", "4", "-v", version, "-s", "2"]
    args += ["--custom-tlv", "0xa0", "0x13040100"]  # our hardware tag: chip 0x413, board 1
    if "-S" not in extra:
        args += ["-S", hex(SLOT)]
    if key is not None:
        args += ["-k", str(key)]
    subprocess.run([*args, *extra, str(raw), str(out)], check=True, capture_output=True)
    return out


WRONG_FOR_DEVICE = sorted(p.name for p in SLOT_RULES.glob("*.bin") if not p.name.startswith("good-"))
IMGTOOL_WRONG = {
    "non-bootable.bin": ("--non-bootable",),
    "padded-128k.bin": ("--pad", "-S", "0x20000"),
    "rom-fixed-bootloader.bin": ("--rom-fixed", "0x08000000"),
}


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    state = tmp_path_factory.mktemp("device")
    factory_program(state, OLD)
    with running_emulator("ota", baud=0, time_scale=0, state_dir=state) as emu:
        yield emu


def _slots(emu: EmulatorHandle) -> tuple[bytes, bytes, int]:
    flash = emu.device.flash
    return flash.read(*F407.layout.primary), flash.read(*F407.layout.secondary), flash.erases


def _refused(emu: EmulatorHandle, path: Path, reason: str, capsys: pytest.CaptureFixture[str]) -> str:
    before = _slots(emu)
    code = main(["flash", "-p", emu.port, str(path), "-q", "-k", str(PUB)])
    err = capsys.readouterr().err
    assert code != 0, err
    assert f"{reason}:" in err, err
    assert "hint:" in err, err
    assert _slots(emu) == before, "a slot changed or a sector was erased"
    return err


@pytest.mark.parametrize("name", sorted(p.name for p in BAD.glob("*.bin")))
def test_every_bad_asset_is_refused_before_any_erase(
    device: EmulatorHandle, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _refused(device, BAD / name, BAD_REASONS[name], capsys)


@pytest.mark.parametrize("name", sorted(WRONG_FOR_DEVICE))
def test_an_image_wrong_for_this_device_is_refused_before_any_erase(
    device: EmulatorHandle, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The committed assets/bad/slot-rules/ images (made by our sign, see make_bad.py)."""
    _refused(device, SLOT_RULES / name, BAD_REASONS[name], capsys)


@pytest.mark.interop
@pytest.mark.parametrize("name", sorted(IMGTOOL_WRONG))
def test_an_imgtool_image_wrong_for_this_device_is_refused_before_any_erase(
    device: EmulatorHandle, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _refused(device, _imgtool(tmp_path, name, *IMGTOOL_WRONG[name]), BAD_REASONS[name], capsys)


@pytest.mark.interop
def test_imgtool_lower_version_unsigned_and_wrong_key_are_refused(
    device: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _refused(device, _imgtool(tmp_path, "old.bin", version="0.9.0"), "downgrade", capsys)
    _refused(device, _imgtool(tmp_path, "unsigned.bin", key=None), "missing-tlv", capsys)
    _refused(device, _imgtool(tmp_path, "other.bin", key=UNTRUSTED), "unknown-key", capsys)


def test_random_bytes_the_text_of_a_hex_and_a_raw_application_are_refused(
    device: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    noise = tmp_path / "noise.bin"
    noise.write_bytes(random.Random(1).randbytes(4096))
    _refused(device, noise, "bad-magic", capsys)
    text = tmp_path / "app.bin"  # the text of a .hex, named like a binary
    text.write_bytes(to_intel_hex([(0x08080000, _ours())]))
    err = _refused(device, text, "bad-magic", capsys)
    assert "text of a .hex" in err
    raw = tmp_path / "raw.bin"
    raw.write_bytes(RAW)
    err = _refused(device, raw, "bad-magic", capsys)
    assert "stm32ota sign -k KEY.pem" in err


def test_the_same_version_needs_force(device: EmulatorHandle, capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(device, FIRMWARE / "demo-1.0.0.signed.bin", "same-version", capsys)
    assert "--force" in err


def test_the_sign_command_a_refusal_suggests_works_as_written(
    device: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tmp_path / "app.bin"
    raw.write_bytes(RAW)
    err = _refused(device, raw, "bad-magic", capsys)
    command = "stm32ota sign " + err.split("stm32ota sign ", 1)[1].splitlines()[0].strip()
    (tmp_path / "KEY.pem").write_bytes(KEY.read_bytes())  # KEY.pem: the signing key, wherever its owner keeps it
    monkeypatch.chdir(tmp_path)
    assert main(command.split()[1:]) == 0, capsys.readouterr().err
    signed = tmp_path / "app.signed.bin"
    assert main(["flash", "-p", device.port, str(signed), "-q", "--no-reboot"]) == 0, capsys.readouterr().err


def test_the_inspect_command_a_refusal_suggests_names_the_file_as_given(
    device: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # before: the hint said `stm32ota inspect truncated.bin` (the base name), which fails outside its folder
    import shlex

    folder = tmp_path / "my builds"
    folder.mkdir()
    damaged = folder / "truncated.bin"
    damaged.write_bytes((BAD / "truncated.bin").read_bytes())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    err = _refused(device, damaged, "truncated", capsys)
    command = "stm32ota inspect " + err.split("stm32ota inspect ", 1)[1].splitlines()[0].strip()
    assert shlex.split(command)[2] == str(damaged)
    main(shlex.split(command)[1:])  # inspect says what is wrong with the file it was pointed at
    assert "no such file" not in capsys.readouterr().err.lower()


def _installs(emu: EmulatorHandle, path: Path, capsys: pytest.CaptureFixture[str], version: str) -> None:
    code = main(["flash", "-p", emu.port, str(path), "-q", "--json", "-k", str(PUB)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f'"version": "{version}"' in captured.out


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[EmulatorHandle]:
    state = tmp_path / "state"
    factory_program(state, OLD)
    with running_emulator("ota", baud=0, time_scale=0, state_dir=state) as emu:
        yield emu


def test_a_good_image_padded_to_the_slot_size_installs(
    fresh: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "padded.bin"
    path.write_bytes(_ours(pad=True))
    assert len(path.read_bytes()) == SLOT
    _installs(fresh, path, capsys, "1.2.0+0")


def test_the_committed_good_padded_asset_installs(fresh: EmulatorHandle, capsys: pytest.CaptureFixture[str]) -> None:
    _installs(fresh, SLOT_RULES / "good-padded-384k.bin", capsys, "1.1.0+0")


@pytest.mark.interop
def test_an_imgtool_image_padded_to_the_slot_size_installs(
    fresh: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _imgtool(tmp_path, "padded.bin", "--pad")
    assert len(path.read_bytes()) == SLOT
    _installs(fresh, path, capsys, "1.2.0+0")


@pytest.mark.interop
def test_a_signed_image_as_imgtool_hex_installs_like_its_bin(
    fresh: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _imgtool(tmp_path, "app.signed.hex", "--hex-addr", "0x08080000")
    assert path.read_bytes().startswith(b":")
    _installs(fresh, path, capsys, "1.2.0+0")


def test_a_signed_image_as_srec_installs_like_its_bin(
    fresh: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import bincopy

    image = bincopy.BinFile()
    image.add_binary(_ours(), address=0x08080000)
    image.execution_start_address = 0x08080000  # bincopy writes the S7 termination record only with one
    path = tmp_path / "app.signed.srec"
    path.write_text(image.as_srec())
    _installs(fresh, path, capsys, "1.2.0+0")


def test_a_counter_below_the_running_confirmed_image_is_refused_right_after_an_update(
    fresh: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Back to back: 1.1.0 (counter 2) installs and is confirmed; 1.2.0 with counter 0 is refused at once,
    although the device only stores counter 2 at its next normal boot."""
    _installs(fresh, FIRMWARE / "demo-1.1.0.signed.bin", capsys, "1.1.0+0")
    path = tmp_path / "low.bin"
    path.write_bytes(_ours(security_counter=0))
    err = _refused(fresh, path, "security-counter", capsys)
    assert "-s 2" in err


def test_the_status_tables_sign_example_works_as_written(
    device: EmulatorHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hint a device's BAD_MAGIC / BAD_SIGNATURE reply carries (for the emulated STM32F407)."""
    from protocol.update.status import SIGN_EXAMPLE

    (tmp_path / "app.bin").write_bytes(RAW)
    (tmp_path / "KEY.pem").write_bytes(KEY.read_bytes())
    monkeypatch.chdir(tmp_path)
    assert main(SIGN_EXAMPLE.split()[1:]) == 0, capsys.readouterr().err
    code = main(["flash", "-p", device.port, "app.signed.bin", "-q", "--no-reboot", "-k", str(PUB)])
    assert code == 0, capsys.readouterr().err
