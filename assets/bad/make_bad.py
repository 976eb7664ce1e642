"""Build the deliberately bad images in this folder from the demo firmware (``python make_bad.py``).

Each image breaks exactly one check; ``BAD_IMAGES`` says which, and the tests
(``tests/protocol/image/test_assets.py``) rebuild every file and compare it byte for byte, then check that
``verify_image`` rejects it with the documented reason.  Ed25519 signatures are deterministic, so the output
is reproducible.  The device a bad image is checked against: the dev keys, chip 0x413, board 1, minimum
security counter 1 (``DEVICE``).
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from protocol.image import (  # noqa: E402
    HardwareTag,
    Tlv,
    TlvType,
    load_private_key,
    parse_image,
    public_key_der,
    sign_image,
)
from protocol.image.mcuboot import assemble_tlv_area  # noqa: E402

FIRMWARE = ROOT / "assets" / "firmware"
KEYS = ROOT / "assets" / "keys"
DEV_KEY = KEYS / "dev-ed25519-DO-NOT-USE-IN-PRODUCTION.pem"
DEV_EC_KEY = KEYS / "dev-ecdsa-p256-DO-NOT-USE-IN-PRODUCTION.pem"
UNTRUSTED_KEY = HERE / "untrusted-ed25519-DO-NOT-USE.pem"
F407, F103 = 0x413, 0x410

# What the emulated STM32F407 checks images against.
DEVICE: dict[str, Any] = {"chip_id": F407, "board_id": 1, "min_security_counter": 1}
# The options of the good demo images (see ../firmware/Makefile).
SIGN: dict[str, Any] = {"header_size": 0x200, "pad_header": True, "align": 8, "slot_size": 0x60000}


@dataclass(frozen=True)
class BadImage:
    reason: str  # the ImageError reason slug verify_image raises
    what: str  # one line for the README


BAD_IMAGES: dict[str, BadImage] = {
    "tampered.bin": BadImage("digest-mismatch", "demo 1.1.0 with one payload byte changed after signing"),
    "wrong-key.bin": BadImage("unknown-key", "demo 1.1.0 signed with a key the device does not trust"),
    "wrong-chip.bin": BadImage("wrong-chip", "demo 1.1.0 tagged for an STM32F103 (DEV_ID 0x410)"),
    "wrong-board.bin": BadImage("wrong-board", "demo 1.1.0 tagged for board 7 (the device is board 1)"),
    "security-counter-0.bin": BadImage(
        "security-counter", "demo 1.1.0 as version 1.1.1 but security counter 0 (device minimum 1)"
    ),
    "truncated.bin": BadImage("truncated", "demo 1.1.0 cut 40 bytes short, inside the signature TLV"),
    "bad-magic.bin": BadImage("bad-magic", "demo 1.1.0 with the header magic changed"),
    "tlv-overrun.bin": BadImage("tlv-overrun", "demo 1.1.0 whose signature TLV is longer than its area"),
    "huge-size.bin": BadImage("too-large", "demo 1.1.0 whose header declares a 4 GiB payload"),
    "bad-signature.bin": BadImage(
        "bad-signature",
        "demo 1.1.0 with demo 1.0.0's valid signature: signed other bytes",
    ),
    "unsigned.bin": BadImage("missing-tlv", "demo 1.1.0 with a SHA-256 TLV but no key and no signature"),
    "no-hw-tag.bin": BadImage("missing-tlv", "demo 1.1.0 signed without the hardware tag"),
    "wrong-key-type.bin": BadImage(
        "wrong-key-type",
        "demo 1.1.0 whose PUBKEY is the trusted ECDSA key, signature Ed25519",
    ),
    "unprotected-tlv.bin": BadImage(
        "bad-tlv", "demo 1.1.0 with a custom TLV slipped into the unprotected (unsigned) area"
    ),
}


# Images that are genuine (they pass verify_image) but wrong for the emulated STM32F407's slots, running
# demo 1.0.0: refused by MCUboot's slot rules (protocol.image.slot) or the host's version check
# (protocol.preflight).  They live in slot-rules/ so the signature-check tests above do not meet them.
SLOT_RULES_DIR = HERE / "slot-rules"
SLOT_RULE_IMAGES: dict[str, BadImage] = {
    "non-bootable.bin": BadImage("non-bootable", "demo 1.1.0 signed --non-bootable"),
    "padded-128k.bin": BadImage(
        "misplaced-trailer", "demo 1.1.0 padded for a 128 KiB slot (--pad -S 0x20000); the slot has 384 KiB"
    ),
    "rom-fixed-bootloader.bin": BadImage(
        "rom-fixed", "demo 1.1.0 with ROM_FIXED at 0x08000000 (the bootloader's address)"
    ),
    "lower-version.bin": BadImage("downgrade", "demo 1.1.0 signed as version 0.9.0 (the device runs 1.0.0)"),
}
# A good image padded to this device's own slot size (--pad -S 0x60000): it must install.
GOOD_PADDED = "good-padded-384k.bin"


def build_slot_rules() -> dict[str, bytes]:
    """The slot-rule images and the good padded one, by file name (in ``slot-rules/``)."""
    key = load_private_key(DEV_KEY.read_bytes())
    fw_110 = (FIRMWARE / "demo-1.1.0.bin").read_bytes()
    tag = HardwareTag(chip_id=F407)
    opts: dict[str, Any] = {**SIGN, "align": 4, "hw_tag": tag, "security_counter": 2, "version": "1.1.0"}
    out = {
        "non-bootable.bin": sign_image(fw_110, key, **opts, non_bootable=True),
        "padded-128k.bin": sign_image(fw_110, key, **{**opts, "slot_size": 0x20000}, pad=True),
        "rom-fixed-bootloader.bin": sign_image(fw_110, key, **opts, rom_fixed=0x0800_0000),
        "lower-version.bin": sign_image(fw_110, key, **{**opts, "version": "0.9.0", "security_counter": 1}),
        GOOD_PADDED: sign_image(fw_110, key, **opts, pad=True),
    }
    assert set(out) == {*SLOT_RULE_IMAGES, GOOD_PADDED}
    return out


def _replace_unprotected(image: bytes, tlvs: list[Tlv]) -> bytes:
    parsed = parse_image(image)
    start = len(parsed.hashed)
    return image[:start] + assemble_tlv_area(tlvs, protected=False) + image[parsed.end :]


def build() -> dict[str, bytes]:
    """Every bad image by file name."""
    key = load_private_key(DEV_KEY.read_bytes())
    untrusted = load_private_key(UNTRUSTED_KEY.read_bytes())
    ec_key = load_private_key(DEV_EC_KEY.read_bytes())
    fw_100 = (FIRMWARE / "demo-1.0.0.bin").read_bytes()
    fw_110 = (FIRMWARE / "demo-1.1.0.bin").read_bytes()
    tag = HardwareTag(chip_id=F407)
    good = sign_image(fw_110, key, version="1.1.0", security_counter=2, hw_tag=tag, **SIGN)
    good_100 = sign_image(fw_100, key, version="1.0.0", security_counter=1, hw_tag=tag, **SIGN)
    parsed = parse_image(good)
    out: dict[str, bytes] = {}

    tampered = bytearray(good)
    tampered[0x200 + len(fw_110) // 2] ^= 0x01
    out["tampered.bin"] = bytes(tampered)
    out["wrong-key.bin"] = sign_image(fw_110, untrusted, version="1.1.0", security_counter=2, hw_tag=tag, **SIGN)
    out["wrong-chip.bin"] = sign_image(
        fw_110, key, version="1.1.0", security_counter=2, hw_tag=HardwareTag(chip_id=F103), **SIGN
    )
    out["wrong-board.bin"] = sign_image(
        fw_110, key, version="1.1.0", security_counter=2, hw_tag=HardwareTag(chip_id=F407, board_id=7), **SIGN
    )
    out["security-counter-0.bin"] = sign_image(fw_110, key, version="1.1.1", security_counter=0, hw_tag=tag, **SIGN)
    out["truncated.bin"] = good[:-40]
    out["bad-magic.bin"] = b"\x00" + good[1:]
    sig_tlv = parsed.find(TlvType.ED25519)[0]
    overrun = bytearray(good)
    struct.pack_into("<H", overrun, sig_tlv.offset - 2, len(sig_tlv.value) + 16)
    out["tlv-overrun.bin"] = bytes(overrun)
    huge = bytearray(good)
    struct.pack_into("<I", huge, 12, 0xFFFFFF00)
    out["huge-size.bin"] = bytes(huge)
    other_sig = parse_image(good_100).find(TlvType.ED25519)[0].value
    out["bad-signature.bin"] = _replace_unprotected(
        good, [t if t.type != TlvType.ED25519 else Tlv(type=t.type, value=other_sig) for t in parsed.tlvs]
    )
    out["unsigned.bin"] = sign_image(fw_110, None, version="1.1.0", security_counter=2, hw_tag=tag, **SIGN)
    out["no-hw-tag.bin"] = sign_image(fw_110, key, version="1.1.0", security_counter=2, **SIGN)
    full = parse_image(
        sign_image(fw_110, key, version="1.1.0", security_counter=2, hw_tag=tag, public_key_format="full", **SIGN)
    )
    swapped = [t if t.type != TlvType.PUBKEY else Tlv(type=t.type, value=public_key_der(ec_key)) for t in full.tlvs]
    out["wrong-key-type.bin"] = _replace_unprotected(good, swapped)
    out["unprotected-tlv.bin"] = _replace_unprotected(good, [*parsed.tlvs, Tlv(type=0x00A1, value=b"not signed")])
    assert set(out) == set(BAD_IMAGES)
    return out


def main() -> None:
    for name, data in build().items():
        (HERE / name).write_bytes(data)
    SLOT_RULES_DIR.mkdir(exist_ok=True)
    for name, data in build_slot_rules().items():
        (SLOT_RULES_DIR / name).write_bytes(data)


if __name__ == "__main__":
    main()
