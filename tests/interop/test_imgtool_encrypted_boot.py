"""An image encrypted by the real ``imgtool sign -E`` on the emulated STM32F407 configured with the matching key.

``stm32ota flash`` installs it (the bootloader decrypts it into the primary slot during the swap), the image
boots and confirms itself, ``stm32ota rollback`` brings the old image back (the new one goes back into the
secondary slot encrypted), and at no point does the flash backing file hold the new application's
plaintext in the secondary slot or the scratch sector.  ``stm32ota info`` lists what the device decrypts; a
device without the key, and a swapping device given a compressed image, refuse before the first byte, with a
reason and a hint; the device itself answers ``NO_DECRYPT_KEY`` / ``COMPRESSED`` when the host's check is
skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.chips import CHIPS
from emulator.demo import factory_program
from emulator.testing import EmulatorHandle, running_emulator
from protocol.cli import main
from protocol.image import HardwareTag, parse_image

from .test_imgtool_keys import Imgtool

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "assets" / "firmware"
KEY = REPO / "assets" / "keys" / "dev-ed25519-DO-NOT-USE-IN-PRODUCTION.pem"
F407 = CHIPS["stm32f407vg"]
OLD = (FIRMWARE / "demo-1.0.0.signed.bin").read_bytes()
APP = (FIRMWARE / "demo-1.1.0.bin").read_bytes()
WINDOW = 48


@pytest.fixture(scope="module")
def imgtool() -> Imgtool:
    from tests.conftest import require_module, require_tool

    require_tool("imgtool", "pip install imgtool")
    require_module("imgtool", "pip install imgtool")
    return Imgtool()


@pytest.fixture(scope="module")
def made(imgtool: Imgtool, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The device's X25519 key (made by imgtool), its public half, and imgtool's encrypted and compressed
    images of the 1.1.0 demo application for this chip."""
    folder = tmp_path_factory.mktemp("imgtool")
    enc, pub = folder / "enc.pem", folder / "enc-pub.pem"
    imgtool.run("keygen", "-k", enc, "-t", "x25519")
    imgtool.run("getpub", "-k", enc, "-e", "pem", "-o", pub)
    common = [
        "-k",
        KEY,
        "-v",
        "1.1.0",
        "-H",
        "0x200",
        "--pad-header",
        "-S",
        hex(F407.layout.secondary[1]),
        "--align",
        "4",
        "-s",
        "2",
        *HardwareTag(chip_id=F407.dev_id, board_id=F407.board_id).imgtool_args(),
    ]
    encrypted, compressed = folder / "app.enc.bin", folder / "app.lzma.bin"
    imgtool.run("sign", *common, "-E", pub, FIRMWARE / "demo-1.1.0.bin", encrypted)
    imgtool.run("sign", *common, "--compression", "lzma2armthumb", FIRMWARE / "demo-1.1.0.bin", compressed)
    assert APP[0x100 : 0x100 + WINDOW] not in encrypted.read_bytes()
    return {"enc": enc, "pub": pub, "encrypted": encrypted, "compressed": compressed}


def _area(state: Path, area: tuple[int, int]) -> bytes:
    start, size = area
    with (state / "flash.bin").open("rb") as backing:
        backing.seek(start - F407.flash_base)
        return backing.read(size)


def _no_plaintext_outside_the_primary(state: Path) -> None:
    """The flash backing file: no window of the application in the secondary slot or the scratch sector (the
    windows the old, plain image shares -- vector table, library code -- are not the new one's plaintext)."""
    windows = [APP[i : i + WINDOW] for i in range(0, len(APP) - WINDOW, 8)]
    windows = [w for w in windows if w not in OLD and len(set(w)) > 8]
    assert len(windows) > 10
    for area, name in ((F407.layout.secondary, "secondary slot"), (F407.layout.scratch, "scratch sector")):
        data = _area(state, area)
        assert not [w for w in windows if w in data], f"plaintext of the encrypted image in the {name}"


@pytest.fixture
def device(made: dict[str, Path], tmp_path: Path) -> Iterator[EmulatorHandle]:
    factory_program(tmp_path, OLD)
    with running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path, enc_key=made["enc"]) as emu:
        yield emu


def _info(emu: EmulatorHandle, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert main(["info", "-p", emu.port, "--json"]) == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_an_imgtool_encrypted_image_boots_confirms_and_rolls_back(
    device: EmulatorHandle, made: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    state = device.state_dir
    encrypted = made["encrypted"].read_bytes()
    caps = _info(device, capsys)["capabilities"]
    assert isinstance(caps, dict) and "ecies-x25519" in caps["encryption"]

    assert main(["flash", "-p", device.port, str(made["encrypted"]), "-q"]) == 0, capsys.readouterr().err
    slots = _info(device, capsys)["slots"]
    assert isinstance(slots, list)
    assert (slots[0]["version"], slots[0]["state"]) == ("1.1.0+0", "confirmed")
    assert slots[0]["digest"] == parse_image(encrypted).stored_digest.hex()  # type: ignore[union-attr]
    primary = _area(state, F407.layout.primary)
    assert primary[0x200 : 0x200 + len(APP)] == APP  # decrypted into the primary slot
    _no_plaintext_outside_the_primary(state)

    assert main(["rollback", "-p", device.port, "--reboot", "-q"]) == 0, capsys.readouterr().err
    slots = _info(device, capsys)["slots"]
    assert isinstance(slots, list)
    assert slots[0]["version"] == "1.0.0+0"
    assert _area(state, F407.layout.secondary)[: len(encrypted)] == encrypted  # encrypted again, as imgtool made it
    _no_plaintext_outside_the_primary(state)

    text = capsys.readouterr()
    assert main(["info", "-p", device.port]) == 0
    text = capsys.readouterr()
    assert "encryption   ecies-x25519" in text.out


def test_a_device_without_the_key_refuses_before_the_first_byte(
    made: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    factory_program(tmp_path, OLD)
    with running_emulator("ota", baud=0, time_scale=0, state_dir=tmp_path) as emu:
        before = (_area(tmp_path, F407.layout.primary), _area(tmp_path, F407.layout.secondary))
        erases = emu.device.flash.erases
        for image, reason in ((made["encrypted"], "no-decrypt-key"), (made["compressed"], "compressed")):
            capsys.readouterr()
            assert main(["flash", "-p", emu.port, str(image), "-q"]) != 0
            err = capsys.readouterr().err
            assert f"{reason}:" in err and "hint:" in err, err
        assert emu.device.flash.erases == erases
        assert (_area(tmp_path, F407.layout.primary), _area(tmp_path, F407.layout.secondary)) == before
