"""protocol.preflight, rule by rule, against a DeviceInfo built here (no device), and the IAP checks also
through ``flash`` against the emulated AN4657 IAP."""

from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.chips import CHIPS
from emulator.iap import IAP_APP_ADDRESS
from emulator.testing import running_emulator
from protocol.cli import main
from protocol.errors import ImageError
from protocol.image import HardwareTag, key_hash, load_private_key, load_public_key, sign_image, to_intel_hex
from protocol.preflight import GENERIC_IAP, IapTarget, check_application, check_image, sign_command
from protocol.update.messages import DeviceInfo, FlashLayout, SectorRun, SlotInfo, SlotRegion, SlotState

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "assets" / "firmware"
KEYS = REPO / "assets" / "keys"
KEY = load_private_key((KEYS / "dev-ed25519-DO-NOT-USE-IN-PRODUCTION.pem").read_bytes())
PUB = load_public_key((KEYS / "dev-ed25519-DO-NOT-USE-IN-PRODUCTION.pub.pem").read_bytes())
OTHER = load_private_key((REPO / "assets" / "bad" / "untrusted-ed25519-DO-NOT-USE.pem").read_bytes())
RAW = (FIRMWARE / "demo-1.1.0.bin").read_bytes()
F407 = CHIPS["stm32f407vg"]
PRIMARY, SECONDARY = F407.layout.primary, F407.layout.secondary
SLOT = SECONDARY[1]


def device(
    version: tuple[int, int, int, int] = (1, 0, 0, 0), counter: int = 1, state: SlotState = SlotState.CONFIRMED
) -> DeviceInfo:
    return DeviceInfo(
        chip_id=0x413,
        board_id=1,
        flash=FlashLayout(
            base=0x0800_0000,
            size=1024 * 1024,
            sectors=(SectorRun(count=4, size=16384), SectorRun(count=1, size=65536), SectorRun(count=7, size=131072)),
            slots=(
                SlotRegion(index=0, address=PRIMARY[0], size=PRIMARY[1]),
                SlotRegion(index=1, address=SECONDARY[0], size=SLOT),
            ),
        ),
        slots=(
            SlotInfo(index=0, state=state, version=version, security_counter=counter),
            SlotInfo(index=1, state=SlotState.EMPTY),
        ),
        key_hashes=(key_hash(PUB),),
    )


def signed(**options: Any) -> bytes:
    opts: dict[str, Any] = {
        "version": "1.2.0",
        "security_counter": 2,
        "header_size": 0x200,
        "pad_header": True,
        "align": 4,
        "slot_size": SLOT,
        "hw_tag": HardwareTag(chip_id=0x413, board_id=1),
        **options,
    }
    key = opts.pop("key", KEY)
    return sign_image(RAW, key, **opts)


def refused(data: bytes, info: DeviceInfo | None = None, **kwargs: Any) -> ImageError:
    with pytest.raises(ImageError) as err:
        check_image(data, info or device(), keys=[PUB], **kwargs)
    assert err.value.hint, "every refusal carries a hint"
    return err.value


def test_a_good_image_passes_with_a_report() -> None:
    report = check_image(signed(), device(), keys=[PUB], name="app.signed.bin")
    assert report.kind == "mcuboot" and report.slot == 1 and report.source_format == "bin"
    assert str(report.version) == "1.2.0+0" and str(report.running_version) == "1.0.0+0"
    assert report.security_counter == 2 and report.min_security_counter == 1
    assert report.key_hash == key_hash(PUB) and report.signature_checked and not report.padded


def test_without_the_public_key_the_signature_is_left_to_the_device() -> None:
    report = check_image(signed(), device())
    assert not report.signature_checked and report.notes
    full = check_image(signed(public_key_format="full"), device())  # PUBKEY in the image: checked here
    assert full.signature_checked


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"key": OTHER}, "unknown-key"),
        ({"key": None}, "missing-tlv"),
        ({"hw_tag": HardwareTag(chip_id=0x410)}, "wrong-chip"),
        ({"hw_tag": HardwareTag(chip_id=0x413, board_id=9)}, "wrong-board"),
        ({"hw_tag": None}, "missing-tlv"),
        ({"non_bootable": True}, "non-bootable"),
        ({"rom_fixed": 0x0800_0000}, "rom-fixed"),
        ({"rom_fixed": SECONDARY[0]}, "rom-fixed"),  # a swapping device runs images from the primary slot
        ({"pad": True, "slot_size": 0x20000}, "misplaced-trailer"),
        ({"security_counter": 0}, "security-counter"),
        ({"security_counter": None}, "missing-tlv"),
        ({"version": "0.9.0"}, "downgrade"),
        ({"version": "1.0.0"}, "same-version"),
    ],
)
def test_each_rule_refuses_with_its_reason(options: dict[str, Any], reason: str) -> None:
    assert refused(signed(**options)).reason == reason


def test_structure_digest_and_signature() -> None:
    good = signed()
    assert refused(good[:-40]).reason == "truncated"
    tampered = bytearray(good)
    tampered[0x300] ^= 1
    assert refused(bytes(tampered)).reason == "digest-mismatch"
    other = signed(version="1.3.0")
    mixed = good[: len(good) - 64] + other[len(other) - 64 :]  # another image's (valid) signature
    assert refused(mixed).reason == "bad-signature"
    assert refused(b"").reason in ("truncated", "bad-magic")


def test_rom_fixed_at_the_primary_slot_passes_as_address_or_offset() -> None:
    check_image(signed(rom_fixed=PRIMARY[0]), device(), keys=[PUB])
    check_image(signed(rom_fixed=PRIMARY[0] - 0x0800_0000), device(), keys=[PUB])


def test_padding_to_this_slots_size_fits_and_too_big_does_not() -> None:
    report = check_image(signed(pad=True), device(), keys=[PUB])
    assert report.padded and len(report.data) == SLOT
    assert refused(signed(pad=True, slot_size=SLOT * 2)).reason in ("misplaced-trailer", "too-large")
    big = sign_image(
        RAW + bytes(SLOT - len(RAW) - 0x200 - 1000),
        KEY,
        version="2.0.0",
        security_counter=2,
        header_size=0x200,
        pad_header=True,
        hw_tag=HardwareTag(chip_id=0x413, board_id=1),
    )
    assert refused(big).reason == "too-large"  # fits imgtool's -S 0x60000 room, not before this trailer


def test_downgrade_and_same_version_need_the_users_word() -> None:
    old = signed(version="0.9.0", security_counter=1)
    assert "--allow-downgrade" in (refused(old).hint or "")
    assert check_image(old, device(), keys=[PUB], allow_downgrade=True).notes
    same = signed(version="1.0.0", security_counter=1)
    assert "--force" in (refused(same).hint or "")
    check_image(same, device(), keys=[PUB], force=True)
    assert refused(old, force=True).reason == "downgrade"  # --force is for the same version only
    # the security counter is hardware rollback protection: no option lowers it
    assert refused(signed(version="0.9.0", security_counter=0), allow_downgrade=True).reason == "security-counter"


def test_the_counter_floor_is_the_running_confirmed_images() -> None:
    info = device(version=(1, 1, 0, 0), counter=5)
    assert refused(signed(security_counter=4), info).reason == "security-counter"
    check_image(signed(security_counter=5), info, keys=[PUB])
    testing = device(version=(1, 1, 0, 0), counter=5, state=SlotState.ACTIVE)  # not confirmed yet
    check_image(signed(security_counter=1), testing, keys=[PUB])


def test_an_empty_device_takes_any_version() -> None:
    blank = device()
    blank = DeviceInfo(**{**blank.__dict__, "slots": (SlotInfo(index=0, state=SlotState.EMPTY),)})
    report = check_image(signed(version="0.0.1", security_counter=0), blank, keys=[PUB])
    assert report.running_version is None


def test_a_signed_image_as_hex_srec_is_checked_like_its_bin() -> None:
    import bincopy

    image = signed()
    text = to_intel_hex([(SECONDARY[0], image)])
    report = check_image(text, device(), keys=[PUB], name="app.signed.hex")
    assert report.data == image and report.source_format == "hex" and report.address == SECONDARY[0]
    srec = bincopy.BinFile()
    srec.add_binary(image, address=SECONDARY[0])
    srec.execution_start_address = SECONDARY[0]
    assert check_image(srec.as_srec().encode(), device(), keys=[PUB], name="app.srec").data == image
    # the same text named .bin is the text of a .hex: refused with a word about it
    err = refused(text, name="app.bin")
    assert err.reason == "bad-magic" and "text of a .hex" in str(err)


def test_random_bytes_and_a_raw_application_are_not_images() -> None:
    noise = random.Random(2).randbytes(3000)
    assert refused(noise).reason == "bad-magic"
    err = refused(RAW, name="demo.bin")
    assert err.reason == "bad-magic" and "raw application" in str(err)
    assert "stm32ota sign -k KEY.pem -v 1.0.1" in (err.hint or "") and "demo.bin demo.signed.bin" in (err.hint or "")


def test_the_sign_command_names_everything_this_device_needs() -> None:
    command = sign_command(device(version=(2, 3, 4, 0), counter=7), name="fw.elf")
    assert command == (
        "stm32ota sign -k KEY.pem -v 2.3.5 -H 0x200 --pad-header -S 0x60000 --align 4 -s 7 --chip 0x413"
        " --board 1 fw.bin fw.signed.bin"
    )


# --- classic IAP ------------------------------------------------------------------------------------------

F407_IAP = IapTarget(
    app_address=IAP_APP_ADDRESS["stm32f407vg"],
    app_size=F407.flash_end - IAP_APP_ADDRESS["stm32f407vg"],
    ram=((0x2000_0000, F407.ram_size),),
)


def app(address: int, size: int = 2048, sp: int = 0x2002_0000) -> bytes:
    return struct.pack("<II", sp, address + 0x1C1) + bytes(range(256)) * (size // 256)


def not_an_application(data: bytes, target: IapTarget = GENERIC_IAP, name: str = "app.bin") -> ImageError:
    with pytest.raises(ImageError) as err:
        check_application(data, target, name=name)
    assert err.value.reason == "not-an-application" and err.value.hint
    return err.value


def test_iap_takes_a_raw_cortex_m_application() -> None:
    data = app(0x0800_4000)
    assert check_application(data, F407_IAP).data == data
    assert check_application(RAW).kind == "application"  # the generic target: any STM32 flash and SRAM


def test_iap_converts_hex_srec_elf_at_their_load_address() -> None:
    data = app(0x0800_4000)
    hex_text = to_intel_hex([(0x0800_4000, data)])
    report = check_application(hex_text, F407_IAP, name="app.hex")
    assert report.data == data and report.address == 0x0800_4000 and report.source_format == "hex"
    elf = check_application((FIRMWARE / "demo-1.0.0.elf").read_bytes(), name="demo.elf")
    assert elf.data == (FIRMWARE / "demo-1.0.0.bin").read_bytes() and elf.address == 0x0802_0200
    err = not_an_application(to_intel_hex([(0x0802_0000, app(0x0802_0000))]), F407_IAP, name="app.hex")
    assert "0x08004000" in str(err)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (random.Random(3).randbytes(4096), "stack pointer"),
        (to_intel_hex([(0x0800_4000, app(0x0800_4000))]), "text of a .hex"),
        (b"S00600004844521B\n", "text of a .hex or .srec"),
        ((FIRMWARE / "demo-1.1.0.signed.bin").read_bytes(), "signed MCUboot image"),
        (b"\x00\x00\x02\x20", "cannot hold a vector table"),
        (struct.pack("<II", 0x2002_0000, 0x0800_41C0) + bytes(64), "Thumb"),
        (struct.pack("<II", 0x2002_0001, 0x0800_41C1) + bytes(64), "stack pointer"),
        (struct.pack("<II", 0x2002_0000, 0x0900_0001) + bytes(64), "outside the application"),
    ],
)
def test_iap_refuses_what_is_not_an_application(data: bytes, words: str) -> None:
    assert words in str(not_an_application(data, F407_IAP))


def test_iap_refuses_an_application_too_big_for_the_area() -> None:
    small = IapTarget(app_address=0x0800_4000, app_size=1024, ram=((0x2000_0000, 0x20000),))
    assert "do not fit" in str(not_an_application(app(0x0800_4000, 4096), small))


def _iap_area(emu: Any) -> bytes:
    personality = emu.device.personality
    return bytes(emu.device.flash.read(personality.app_address, personality.app_size))


@pytest.mark.parametrize("what", ["random", "hex-text"])
def test_flash_into_an_iap_refuses_before_the_download_starts(
    what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "app.bin"
    if what == "random":
        path.write_bytes(random.Random(4).randbytes(5000))
    else:
        path.write_bytes((FIRMWARE / "demo-1.0.0.hex").read_bytes())  # the text of a .hex, named .bin
    with running_emulator("iap", baud=0, time_scale=0) as emu:
        before = _iap_area(emu), emu.device.flash.erases
        code = main(["flash", "-p", emu.port, str(path), "-q"])
        after = _iap_area(emu), emu.device.flash.erases
    err = capsys.readouterr().err
    assert code != 0 and "not-an-application" in err and "hint:" in err, err
    assert after == before


def test_flash_into_an_iap_takes_a_hex_at_its_load_address(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "app.hex"
    data = app(0x0800_4000, 4096)
    path.write_bytes(to_intel_hex([(0x0800_4000, data)]))
    with running_emulator("iap", baud=0, time_scale=0) as emu:
        assert main(["flash", "-p", emu.port, str(path), "-q"]) == 0, capsys.readouterr().err
        flashed = emu.device.flash.read(emu.device.personality.app_address, len(data))  # type: ignore[attr-defined]
    assert flashed == data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=2048), name=st.sampled_from(["a.bin", "a.hex", "a.srec", "a.elf"]))
def test_any_bytes_give_a_report_or_a_typed_error(data: bytes, name: str) -> None:
    for check in (lambda: check_image(data, device(), name=name), lambda: check_application(data, name=name)):
        try:
            check()
        except ImageError as err:
            assert err.reason and str(err)


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(min_value=0, max_value=2000), flip=st.integers(min_value=0, max_value=1999))
def test_a_cut_or_flipped_signed_image_is_refused_never_a_crash(cut: int, flip: int) -> None:
    good = bytearray(signed())
    if flip < len(good):
        good[flip] ^= 0x40
    try:
        check_image(bytes(good[: cut or len(good)]), device(), keys=[PUB])
    except ImageError:
        return
