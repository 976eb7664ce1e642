"""Checks before the first byte: is this file right for this device?  One function per kind of device.

:func:`check_image` judges a file against what an MCUboot device's INFO reports, and :func:`check_application`
judges a file for a classic AN4657 IAP device (which reports nothing, so :class:`IapTarget` says what is
assumed).  Both are pure (bytes and INFO in, a :class:`PreflightReport` or a typed error out), so the CLI's
``flash``, the gateway and the desktop app call the same code before anything is erased or sent::

    report = check_image(data, info, name="app.signed.hex", keys=[pub])     # raises ImageError subclasses
    flash_bytes = report.data                                              # the .bin form of the file

Every refusal is a :class:`~protocol.errors.ImageError` subclass with a stable ``reason`` slug (the table in
``docs/image.md``), one line of message and a ``hint`` that is a command a person can run (``KEY.pem`` stands
for the signing key, which only its owner knows).

What INFO cannot tell: the device's *stored* security counter (MCUboot raises it at a normal boot of a
confirmed image), so the floor is the running confirmed image's counter — what the device will have stored
at its next boot; and the flash write unit that sizes MCUboot's trailer, taken from the chip id
(:func:`protocol.image.slot.flash_write_unit`).  A signature can only be checked against a public key: the
device reports key *hashes*, so a ``KEYHASH`` image's signature is checked when the caller passes the public
key (``keys``, ``flash --key``), otherwise the device checks it after the transfer (the report says so).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from .errors import ImageError
from .image.capabilities import check_capabilities, check_dependencies
from .image.compression import is_compressed
from .image.encryption import is_encrypted
from .image.errors import (
    BadMagicError,
    InputFormatError,
    MissingTlvError,
    NotAnApplicationError,
    UnknownKeyError,
    VersionError,
    reason_of,
)
from .image.keys import PublicKey, key_hash, public_key
from .image.loaders import Firmware, guess_format, load_firmware
from .image.mcuboot import IMAGE_MAGIC, Image, ImageVersion, parse_image
from .image.slot import SlotGeometry, check_slot_rules, flash_write_unit, slot_trailer_reserve
from .image.verify import TrustedKey, check_claims, check_digest, check_structure, verify_parsed
from .update.constants import PRIMARY_SLOT, SECONDARY_SLOT
from .update.messages import DIGESTS, ENCRYPTION_SCHEMES, SIGNATURE_TYPES, DeviceInfo, SlotInfo, SlotState

__all__ = [
    "GENERIC_IAP",
    "PRIMARY_SLOT",
    "SECONDARY_SLOT",
    "IapTarget",
    "PreflightReport",
    "check_application",
    "check_image",
    "sign_command",
]

HEADER_SIZE = 0x200  # what the sign command suggests: room for a Cortex-M vector table's alignment
_RUNNING_STATES = (SlotState.CONFIRMED, SlotState.ACTIVE, SlotState.INACTIVE)
_VECTOR_BYTES = 8  # initial stack pointer, reset handler
_THUMB_BIT = 1
_STACK_ALIGN = 4


@dataclass(frozen=True, kw_only=True)
class PreflightReport:
    """What the checks found.  ``data`` is what to send: the file itself, or the flat binary of a .hex, .srec
    or .elf (gaps filled with 0xFF as ``objcopy -O binary`` does)."""

    data: bytes
    source_format: str  # "bin", "hex", "srec" or "elf"
    kind: Literal["mcuboot", "application"]
    slot: int | None = None  # target slot (MCUboot devices)
    address: int | None = None  # where the data goes, when known
    version: ImageVersion | None = None
    running_version: ImageVersion | None = None
    security_counter: int | None = None
    min_security_counter: int = 0
    key_hash: bytes | None = None
    signature_checked: bool = False  # False: the device checks the signature (no public key on the host)
    padded: bool = False  # padded to the slot's size with a trailer at its end (imgtool --pad)
    notes: tuple[str, ...] = field(default_factory=tuple)


def _to_binary(data: bytes, name: str) -> tuple[Firmware, str]:
    fmt = guess_format(name, data)
    if fmt == "bin":
        return Firmware(address=None, data=bytes(data)), fmt
    return load_firmware(data, fmt), fmt


def _slot_version(slot: SlotInfo) -> ImageVersion:
    major, minor, revision, build = slot.version
    return ImageVersion(major=major, minor=minor, revision=revision, build=build)


def _running(info: DeviceInfo) -> SlotInfo | None:
    return next((s for s in info.slots if s.index == PRIMARY_SLOT and s.state in _RUNNING_STATES), None)


def _stem(name: str) -> str:
    base = os.path.basename(name) or "app.bin"
    stem, _ext = os.path.splitext(base)
    return stem.removesuffix(".signed") or "app"


def sign_command(
    info: DeviceInfo,
    *,
    name: str = "app.bin",
    version: ImageVersion | None = None,
    security_counter: int | None = None,
    slot: int = SECONDARY_SLOT,
) -> str:
    """A complete ``stm32ota sign`` command for a raw application ``name`` and this device: slot size, write
    unit, chip and board tag, a version above the running one and a sufficient security counter."""
    running = _running(info)
    if version is None:
        if running is not None:
            v = _slot_version(running)
            version = ImageVersion(major=v.major, minor=v.minor, revision=min(v.revision + 1, 0xFFFF))
        else:
            version = ImageVersion(major=1)
    counter = security_counter if security_counter is not None else _counter_floor(info)
    try:
        size = info.flash.slot(slot).size
    except KeyError:
        size = 0
    unit = flash_write_unit(info.chip_id)
    raw = f"{_stem(name)}.bin" if guess_format(name) != "bin" or name.endswith(".signed.bin") else shlex.quote(name)
    v = version
    return (
        f"stm32ota sign -k KEY.pem -v {v.major}.{v.minor}.{v.revision} -H 0x{HEADER_SIZE:x} --pad-header"
        f" -S 0x{size:x} --align {unit} -s {counter} --chip 0x{info.chip_id:03x} --board {info.board_id}"
        f" {raw} {shlex.quote(_stem(name) + '.signed.bin')}"
    )


def _counter_floor(info: DeviceInfo) -> int:
    """The lowest security counter the device will accept: the running confirmed image's (MCUboot stores it
    at that image's next normal boot; INFO does not report the stored value itself)."""
    running = _running(info)
    if running is not None and running.state is SlotState.CONFIRMED:
        return running.security_counter
    return 0


def _hint_for(err: ImageError, info: DeviceInfo, name: str, image: Image | None) -> str:
    reason = reason_of(err)
    version = image.version if image is not None else None
    running = _running(info)
    if version is not None and running is not None and version <= _slot_version(running):
        version = None  # let sign_command suggest one above the running version
    if image is None:  # the file is the application itself (or garbage): sign that file
        command = sign_command(info, name=name, version=version)
        sign = f"sign the application for this device (KEY.pem: a key it trusts): {command}"
    else:  # a signed image: sign again the application it was made from
        command = sign_command(info, name="app.bin", version=version)
        sign = (
            "sign the application again for this device (app.bin: the unsigned application; KEY.pem: a key it"
            f" trusts): {command}"
        )
    caps = info.capabilities
    if reason == "no-decrypt-key":
        if caps is not None and caps.encryption:
            schemes = ", ".join(e for e in ENCRYPTION_SCHEMES if e in caps.encryption)
            return f"encrypt it for this device's public key ({schemes}; ENC_PUB.pem): add -E ENC_PUB.pem to {command}"
        return f"this device decrypts no image: sign it without -E: {command}"
    if reason == "unsupported-signature" and caps is not None:
        kinds = [k for k in SIGNATURE_TYPES if k in caps.signatures and k != "ed25519-pure"]
        return f"sign it with a {' or '.join(kinds) or 'supported'} key the device trusts: {command}"
    if reason == "unsupported-digest" and caps is not None:
        digest = next((d for d in DIGESTS if d in caps.digests), "sha256")
        return f"sign it with --sha {digest.removeprefix('sha')}: {command}"
    if reason == "compressed":
        return f"sign it without --compression (this device swaps, it does not decompress): {command}"
    if reason == "dependency":
        return (
            f"see the dependencies with `stm32ota inspect {shlex.quote(name)}`; sign it with -d the device meets"
            f" (it has image 0 only), or without -d: {command}"
        )
    if reason in ("truncated", "tlv-overrun", "bad-tlv", "unsupported") or (reason == "too-large" and image is None):
        return f"the file is damaged or not an MCUboot image; see what it holds: stm32ota inspect {shlex.quote(name)}"
    if reason == "too-large":
        return "make the application smaller: the slot sizes are in `stm32ota info`"
    if reason in ("downgrade", "same-version"):
        flag = "--allow-downgrade" if reason == "downgrade" else "--force (or --allow-downgrade)"
        return f"to install it anyway, add {flag} to the flash command; or {sign}"
    return sign


def check_image(
    data: bytes,
    info: DeviceInfo,
    *,
    slot: int = SECONDARY_SLOT,
    allow_downgrade: bool = False,
    force: bool = False,
    name: str = "app.bin",
    keys: Sequence[TrustedKey] = (),
) -> PreflightReport:
    """Check ``data`` (a signed image as .bin, or as .hex/.srec/.elf, told apart by ``name`` and contents)
    for slot ``slot`` of the MCUboot device whose INFO is ``info``.

    The checks, in order: the file format; the image structure; unsupported features; the digest; the key (its
    hash among ``info.key_hashes``) and, with a public key for it (``keys`` or the image's PUBKEY), the
    signature; the security counter (at least the running confirmed image's); the chip and board tag;
    MCUboot's slot rules (:func:`protocol.image.slot.check_slot_rules`: not non-bootable, ROM_FIXED at the
    run address, fits before the trailer, padding only to this slot's size); the version (above the running
    one unless ``allow_downgrade``; the same version with ``force``).  Raises the typed
    :class:`~protocol.errors.ImageError` of the first failure, with a hint; returns the report otherwise.
    """
    try:
        firmware, fmt = _to_binary(data, name)
        return _check_mcuboot(firmware, fmt, info, slot=slot, allow_downgrade=allow_downgrade, force=force, keys=keys)
    except ImageError as err:
        if reason_of(err) != "bad-input":
            err.hint = _hint_for(err, info, name, _try_parse(data, name))
        raise


def _try_parse(data: bytes, name: str) -> Image | None:
    try:
        return parse_image(_to_binary(data, name)[0].data)
    except ImageError:
        return None


def _check_mcuboot(
    firmware: Firmware,
    fmt: str,
    info: DeviceInfo,
    *,
    slot: int,
    allow_downgrade: bool,
    force: bool,
    keys: Sequence[TrustedKey],
) -> PreflightReport:
    flat = firmware.data
    if len(flat) >= 4 and struct.unpack_from("<I", flat)[0] != IMAGE_MAGIC:
        what = "a raw application, not a signed image" if _looks_like_vectors(flat) else "not a signed image"
        if flat[:1] == b":" or flat[:2] in (b"S0", b"S1", b"S3"):
            what = "the text of a .hex or .srec file; name it .hex/.srec so it is read as one"
        raise BadMagicError(f"bad-magic: the file is {what} (no MCUboot header)")
    image = parse_image(flat)
    encrypted, compressed = is_encrypted(image), is_compressed(image)
    notes: list[str] = []
    if info.capabilities is not None:
        check_capabilities(image, info.capabilities, encrypted=encrypted, compressed=compressed)
    elif encrypted:
        notes.append("the device does not report whether it decrypts images (a protocol 1.0/1.1 bootloader)")
    if encrypted:
        # the digest and signature cover the plaintext, which only the device's private key reveals
        check_structure(image, decrypted=True)
        notes.append("encrypted image: the device checks its digest and signature after decrypting it")
    else:
        check_digest(image)
    trusted = set(info.key_hashes)
    signer = image.key_hash
    if image.signature_type is None:
        raise MissingTlvError("missing-tlv: the image is not signed (no signature TLV); the device runs signed images")
    if not trusted:
        raise UnknownKeyError("unknown-key: the device reports no trusted key, so it accepts no signed image")
    if signer is None:
        raise MissingTlvError("missing-tlv: the signature is not preceded by a KEYHASH or PUBKEY TLV")
    # The device lists SHA-256 key hashes; an image with a SHA-384/512 digest names its key by that hash
    # instead, so the trusted keys given here (and a carried PUBKEY) are hashed both ways.
    publics: list[PublicKey] = []
    for key in keys:
        if not isinstance(key, bytes | bytearray):
            pub = public_key(key)
            if key_hash(pub) in trusted:
                publics.append(pub)
    by_image_hash = {key_hash(k, image.digest_name): k for k in publics}
    carried = image.public_key_der
    known_signer = signer in trusted or signer in by_image_hash
    if not known_signer and carried is not None:
        known_signer = hashlib.sha256(carried).digest() in trusted
    if not known_signer:
        listed = ", ".join(h.hex()[:16] + "..." for h in info.key_hashes)
        raise UnknownKeyError(
            f"unknown-key: the image is signed by key {signer.hex()[:16]}..., the device trusts {listed}",
        )
    floor = _counter_floor(info)
    checked = not encrypted and (carried is not None or signer in by_image_hash)
    if checked:
        known = {key_hash(k) for k in publics}
        table: list[TrustedKey] = [*publics, *(h for h in info.key_hashes if h not in known)]
        if carried is not None and image.digest_name != "sha256" and hashlib.sha256(carried).digest() in trusted:
            # the carried key is trusted by its SHA-256 hash: let the verifier trust it by the image's hash too
            table.append(hashlib.new(image.digest_name, carried).digest())
        verified = verify_parsed(
            image, keys=table, chip_id=info.chip_id, board_id=info.board_id, min_security_counter=floor
        )
        counter = verified.security_counter
    else:
        counter, _tag = check_claims(image, chip_id=info.chip_id, board_id=info.board_id, min_security_counter=floor)
        if not encrypted:
            notes.append("signature not checked on the host (no public key for it): the device checks it")
    # a single-image device: image 0 is the only one, and after the update it runs this image's version
    check_dependencies(image, {PRIMARY_SLOT: image.version})
    try:
        region = info.flash.slot(slot)
        run = info.flash.slot(PRIMARY_SLOT)
    except KeyError:
        raise ImageError(f"the device has no slot {slot} in its flash layout", hint="see `stm32ota info`") from None
    geometry = SlotGeometry(
        address=region.address,
        size=region.size,
        trailer_reserve=slot_trailer_reserve(flash_write_unit(info.chip_id)),
        run_address=run.address,
        flash_base=info.flash.base,
    )
    check_slot_rules(image, geometry, data_size=len(flat))
    running = _running(info)
    running_version = _slot_version(running) if running is not None else None
    if running_version is not None:
        new, old = image.version, running_version
        new3, old3 = (new.major, new.minor, new.revision), (old.major, old.minor, old.revision)
        if new3 < old3 and not allow_downgrade:
            raise VersionError(f"downgrade: the image is version {new}, the device runs {old}", reason="downgrade")
        if new3 == old3 and not (force or allow_downgrade):
            raise VersionError(f"same-version: the device already runs version {old}", reason="same-version")
        if new3 < old3:
            notes.append(f"downgrade from {old} to {new} allowed")
        elif new3 == old3:
            notes.append(f"same version {new} installed again")
    return PreflightReport(
        data=flat,
        source_format=fmt,
        kind="mcuboot",
        slot=slot,
        address=firmware.address,
        version=image.version,
        running_version=running_version,
        security_counter=counter,
        min_security_counter=floor,
        key_hash=signer,
        signature_checked=checked,
        padded=len(flat) == region.size and image.trailer is not None,
        notes=tuple(notes),
    )


# --- classic IAP (AN4657) ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class IapTarget:
    """What a raw application must fit on an IAP device.  ``app_address``/``app_size``: the application area
    (``None``: unknown, anywhere in ``flash``); ``ram``: ``(start, size)`` regions the initial stack pointer
    may point to the top of."""

    flash: tuple[int, int] = (0x0800_0000, 2 * 1024 * 1024)
    app_address: int | None = None
    app_size: int | None = None
    ram: tuple[tuple[int, int], ...] = ((0x2000_0000, 1024 * 1024),)

    @property
    def description(self) -> str:
        if self.app_address is None:
            return f"an STM32 application (flash 0x{self.flash[0]:08x}.., SRAM 0x{self.ram[0][0]:08x}..)"
        return f"the application area at 0x{self.app_address:08x}"


# AN4657 menus do not say which chip they run on or where the application area is: every STM32's flash starts
# at 0x08000000 (up to 2 MiB) and its SRAM at 0x20000000 (CCM at 0x10000000, H7 AXI SRAM at 0x24000000).
GENERIC_IAP = IapTarget(ram=((0x2000_0000, 1024 * 1024), (0x1000_0000, 64 * 1024), (0x2400_0000, 1024 * 1024)))


def _looks_like_vectors(data: bytes, target: IapTarget = GENERIC_IAP) -> bool:
    if len(data) < _VECTOR_BYTES:
        return False
    sp, reset = struct.unpack_from("<II", data)
    in_ram = any(start < sp <= start + size for start, size in target.ram)
    flash_start, flash_size = target.flash
    return in_ram and bool(reset & _THUMB_BIT) and flash_start <= reset < flash_start + flash_size


def check_application(data: bytes, target: IapTarget = GENERIC_IAP, *, name: str = "app.bin") -> PreflightReport:
    """Check ``data`` as a raw Cortex-M application for a classic IAP device (``target``).

    A .hex/.srec/.elf (told by ``name`` and contents) is converted to the flat binary from its load address,
    which must be the start of the application area when ``target`` knows it.  The vector table must hold an
    initial stack pointer inside ``target``'s RAM (word aligned) and a reset handler inside the application
    (Thumb bit set); the file must fit the area.  A signed MCUboot image is refused: an IAP jumps to the first
    byte of its area, which would be the MCUboot header, not a vector table.
    """
    try:
        firmware, fmt = _to_binary(data, name)
    except InputFormatError as err:
        err.hint = err.hint or f"check the file; see what it holds: stm32ota inspect {shlex.quote(name)}"
        raise
    flat = firmware.data
    start = firmware.address if firmware.address is not None else target.app_address
    convert = "arm-none-eabi-objcopy -O binary app.elf app.bin"
    if target.app_address is not None and firmware.address is not None and firmware.address != target.app_address:
        raise NotAnApplicationError(
            f"not-an-application: the file loads at 0x{firmware.address:08x}, the application area starts at"
            f" 0x{target.app_address:08x}",
            hint="link the application for the IAP's application address (the FLASH ORIGIN in its .ld file)",
        )
    if len(flat) >= 4 and struct.unpack_from("<I", flat)[0] == IMAGE_MAGIC:
        raise NotAnApplicationError(
            "not-an-application: this is a signed MCUboot image; a classic IAP device runs the raw application",
            hint=f"flash the application the image was signed from (the .bin before `stm32ota sign`), e.g. {convert}",
        )
    if flat[:1] == b":" or (flat[:1] in (b"S", b"s") and flat[1:2].isdigit()):
        raise NotAnApplicationError(
            "not-an-application: the file is the text of a .hex or .srec file, not a binary",
            hint="name it .hex (or .srec) so it is read as one, or convert it: "
            "arm-none-eabi-objcopy -I ihex -O binary app.hex app.bin",
        )
    if len(flat) < _VECTOR_BYTES:
        raise NotAnApplicationError(
            f"not-an-application: {len(flat)} bytes cannot hold a vector table", hint=f"build the .bin: {convert}"
        )
    sp, reset = struct.unpack_from("<II", flat)
    ram = ", ".join(f"0x{s:08x}..0x{s + n:08x}" for s, n in target.ram)
    if sp % _STACK_ALIGN or not any(s < sp <= s + n for s, n in target.ram):
        raise NotAnApplicationError(
            f"not-an-application: the first word (initial stack pointer 0x{sp:08x}) is not the top of RAM"
            f" ({ram}): this is not a Cortex-M application's vector table",
            hint=f"flash the application's .bin (its vector table first): {convert}",
        )
    flash_start, flash_size = target.flash
    lo, hi = (start, start + len(flat)) if start is not None else (flash_start, flash_start + flash_size)
    if not reset & _THUMB_BIT:
        raise NotAnApplicationError(
            f"not-an-application: the reset vector 0x{reset:08x} has no Thumb bit: not a Cortex-M application",
            hint=f"flash the application's .bin (its vector table first): {convert}",
        )
    if not lo <= reset - 1 < hi:
        raise NotAnApplicationError(
            f"not-an-application: the reset handler 0x{reset - 1:08x} is outside the application"
            f" (0x{lo:08x}..0x{hi:08x})",
            hint="link the application for the IAP's application address (the FLASH ORIGIN in its .ld file)",
        )
    if target.app_size is not None and len(flat) > target.app_size:
        raise NotAnApplicationError(
            f"not-an-application: {len(flat)} bytes do not fit the {target.app_size}-byte application area",
            hint="make the application smaller",
        )
    return PreflightReport(data=flat, source_format=fmt, kind="application", address=start)
