"""The emulated bootloader: MCUboot's boot flow, image checks and a swap that survives a power cut anywhere.

Slots (``ChipProfile.layout``): the *primary* slot runs, the *secondary* slot receives updates, the
*scratch* area carries one sector during a swap, the *state* area holds the swap status log.

**Image trailer** (MCUboot ``docs/design.md``, "Image Trailer", ``BOOT_MAX_ALIGN`` = 8): the last bytes of
each slot are ``swap_size`` (u32), ``swap_info``, ``copy_done``, ``image_ok`` (each in its own 8-byte unit)
and the 16-byte boot magic.  Before them MCUboot keeps its swap status; we reserve that room too
(``protocol.image.trailer_size``), so an image may use ``slot size - trailer size`` bytes, exactly as imgtool
computes it, while our swap status lives in the state area (below).  A flag reads *set* (0x01), *unset*
(erased 0xFF) or *bad* (anything else); the magic *good*, *unset* or *bad*.

**Swap type** (MCUboot's ``boot_swap_tables``):

=====================================================  ==========
secondary magic good, secondary image_ok unset          TEST
secondary magic good, secondary image_ok set            PERM
primary magic good, image_ok unset, copy_done set,      REVERT
secondary magic unset
anything else                                           NONE
=====================================================  ==========

Before a TEST or PERM swap the secondary image is checked as MCUboot does (header, SHA-256, signature by a
trusted key, security counter not below the stored one, our hardware tag TLV 0x00A0 naming this chip, and
MCUboot's slot rules of :mod:`protocol.image.slot`: ``ROM_FIXED`` naming the primary slot the image runs
from, the image ending before the trailer); a bad image is erased and the primary slot is never touched.  An
image marked ``IMAGE_F_NON_BOOTABLE`` is "no bootable image" to bootutil: it stays in the secondary slot and
nothing is swapped.  The trailer is read only at a slot's end, so a trailer padded for another slot size
(``imgtool sign --pad -S`` of a smaller slot) means nothing here, and the update agent's VERIFY refuses such a
transfer (``BAD_TRAILER``) while it takes one padded to exactly this slot's size.  A TEST swap into a primary
slot with no bootable image (a device programmed through serial recovery) is made PERM: there is nothing to
revert to, so the new image's first boot is a normal one and raises the stored security counter.

**Encrypted images** (``imgtool sign -E``; the device's private key is ``enc_key``): the secondary slot holds
the payload AES-CTR encrypted, the header and TLVs in the clear.  VERIFY and the boot check decrypt it with
the key wrapped in its ``ENC*`` TLV and check the plaintext (``NoDecryptKeyError``, status ``NO_DECRYPT_KEY``,
when the device has no key or not the matching one; at boot such an image is erased, as MCUboot removes an
image it cannot decrypt).  The swap decrypts the image on its way into the primary slot (step C) and encrypts
the primary image under its own key on its way out (step B), so the secondary slot and the scratch sector
only ever hold ciphertext of an encrypted image, and a revert puts the test image back encrypted.  The
primary slot keeps the header's ``ENCRYPTED`` flag and the TLVs, over a plain payload, as in MCUboot.  Both
images' keys and payload extents are stored before the swap's BEGIN record (MCUboot writes them into the
trailer), so a swap resumed after a power cut en/decrypts with the same keys; they are dropped at DONE.
Compressed images are refused (``compressed``): MCUboot decompresses only in overwrite-only mode.
Dependencies (``-d``) are checked after the signature: this is a single-image device, so a dependency on
another image index, or on image 0 at a version above the candidate's own, refuses the image.

After a swap the primary trailer holds the magic,
``copy_done`` and, for PERM and REVERT, ``image_ok``; the secondary trailer is erased.  The application
confirms a TEST image by setting ``image_ok`` (``boot_set_confirmed``); otherwise the next reset reverts.
The stored security counter rises to the running image's counter once that image is confirmed.

**Swap with scratch**, one slot sector at a time, first to last (the trailer's sector last)::

    A: erase scratch,      copy secondary[i] -> scratch        log (A, i)
    B: erase secondary[i], copy primary[i]   -> secondary[i]   log (B, i)
    C: erase primary[i],   copy scratch      -> primary[i]     log (C, i)   (last sector: + primary trailer)

Each step only reads data that no earlier step of the same sector destroyed, so after a power cut the
bootloader redoes the step after the last one logged.  The log is a sequence of 16-byte CRC-protected
records in the state area: BEGIN (swap id, type, sector count), one record per step, DONE.  A record cut
half-way fails its CRC and is ignored (the step is redone); the log is erased only when no swap is in
progress and it lacks room, first sector first, and an interrupted erase leaves only records that fail their
CRC in the sector it hit (later sectors keep whole BEGIN..DONE runs).
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from protocol.errors import ImageError
from protocol.image import (
    Image,
    ImageTooLargeError,
    NonBootableError,
    TrustedKey,
    VerifiedImage,
    check_digest,
    key_type,
    parse_image,
    reason_of,
    verify_parsed,
)
from protocol.image.capabilities import Capabilities, capabilities_for, check_dependencies
from protocol.image.compression import is_compressed
from protocol.image.encryption import (
    EncryptionPrivateKey,
    aes_ctr_at,
    decrypted_image,
    is_encrypted,
    unwrap_image_key,
)
from protocol.image.errors import CompressedImageError, NoDecryptKeyError
from protocol.image.mcuboot import BOOT_MAGIC, BOOT_MAGIC_SIZE, IMAGE_HEADER_SIZE, IMAGE_MAGIC
from protocol.image.slot import SlotGeometry, check_slot_rules, slot_trailer_reserve

from .chips import ChipProfile, Sector
from .flash import ERASED, Flash

__all__ = [
    "BOOT_MAX_ALIGN",
    "COPY_CHUNK",
    "BootResult",
    "Bootloader",
    "Flag",
    "MagicState",
    "SlotView",
    "StatusLog",
    "SwapType",
    "Trailer",
]

log = logging.getLogger(__name__)

BOOT_MAX_ALIGN = 8  # MCUboot's BOOT_MAX_ALIGN: each trailer flag sits in its own 8-byte unit
BOOT_MAX_SECTORS = 128  # what imgtool reserves swap-status room for (its default --max-sectors)
COPY_CHUNK = 1024  # bytes copied per program operation (the bootloader's RAM buffer)
FLAG_SET = 0x01
STATE_KEY = "boot"  # this module's entry in the persisted state dict

_RECORD = struct.Struct("<HBBHHII")  # magic, kind, arg, sector, count, swap id, crc32
RECORD_SIZE = 16
_RECORD_MAGIC = 0x5753  # "SW"


class SwapType(IntEnum):
    """MCUboot's ``BOOT_SWAP_TYPE_*``."""

    NONE = 1
    TEST = 2
    PERM = 3
    REVERT = 4
    FAIL = 5


class Flag(IntEnum):
    SET = 1
    UNSET = 2
    BAD = 3


class MagicState(IntEnum):
    GOOD = 1
    UNSET = 2
    BAD = 3


class _Kind(IntEnum):
    BEGIN = 1
    STEP = 2
    DONE = 3


class _Step(IntEnum):
    TO_SCRATCH = 1  # A
    TO_SECONDARY = 2  # B
    TO_PRIMARY = 3  # C


@dataclass(frozen=True)
class Trailer:
    """The decoded trailer of one slot."""

    magic: MagicState
    image_ok: Flag
    copy_done: Flag
    swap_info: int
    swap_size: int

    @property
    def erased(self) -> bool:
        return self.magic is MagicState.UNSET and self.image_ok is Flag.UNSET and self.copy_done is Flag.UNSET


def _flag(value: int) -> Flag:
    if value == ERASED:
        return Flag.UNSET
    return Flag.SET if value == FLAG_SET else Flag.BAD


class SlotView:
    """One slot: where it is, its sectors, its trailer and the image in it."""

    def __init__(self, flash: Flash, name: str, start: int, size: int, *, run_address: int | None = None) -> None:
        self.flash = flash
        self.name = name
        self.start = start
        self.size = size
        self.sectors: list[Sector] = flash.sectors_in(start, size)
        self.trailer_reserve = slot_trailer_reserve(flash.chip.write_width)
        self.geometry = SlotGeometry(
            address=start,
            size=size,
            trailer_reserve=self.trailer_reserve,
            run_address=start if run_address is None else run_address,
            flash_base=flash.chip.flash_base,
        )
        self.end = start + size
        self.magic_addr = self.end - BOOT_MAGIC_SIZE
        self.image_ok_addr = self.magic_addr - BOOT_MAX_ALIGN
        self.copy_done_addr = self.image_ok_addr - BOOT_MAX_ALIGN
        self.swap_info_addr = self.copy_done_addr - BOOT_MAX_ALIGN
        self.swap_size_addr = self.swap_info_addr - BOOT_MAX_ALIGN

    @property
    def capacity(self) -> int:
        """The largest image the slot takes (the trailer's room excluded)."""
        return self.size - self.trailer_reserve

    @property
    def trailer_start(self) -> int:
        return self.end - self.trailer_reserve

    # -- trailer ---------------------------------------------------------------------------------------------
    def trailer(self) -> Trailer:
        magic = self.flash.read(self.magic_addr, BOOT_MAGIC_SIZE)
        if magic == BOOT_MAGIC:
            state = MagicState.GOOD
        elif magic == b"\xff" * BOOT_MAGIC_SIZE:
            state = MagicState.UNSET
        else:
            state = MagicState.BAD
        return Trailer(
            magic=state,
            image_ok=_flag(self.flash.read(self.image_ok_addr, 1)[0]),
            copy_done=_flag(self.flash.read(self.copy_done_addr, 1)[0]),
            swap_info=self.flash.read(self.swap_info_addr, 1)[0],
            swap_size=int.from_bytes(self.flash.read(self.swap_size_addr, 4), "little"),
        )

    def write_field(self, addr: int, value: bytes) -> bool:
        """Program one trailer field if its unit is erased; True if it now holds ``value``."""
        unit = max(self.flash.chip.write_width, len(value))
        current = self.flash.read(addr, len(value))
        if current == value:
            return True
        if not self.flash.is_erased(addr, unit):
            return False
        self.flash.program_padded(addr, value)
        return True

    def write_magic(self) -> bool:
        return self.write_field(self.magic_addr, BOOT_MAGIC)

    def write_image_ok(self) -> bool:
        return self.write_field(self.image_ok_addr, bytes([FLAG_SET]))

    def write_copy_done(self) -> bool:
        return self.write_field(self.copy_done_addr, bytes([FLAG_SET]))

    # -- image -----------------------------------------------------------------------------------------------
    def header_magic_ok(self) -> bool:
        return int.from_bytes(self.flash.read(self.start, 4), "little") == IMAGE_MAGIC

    def is_empty(self) -> bool:
        return self.flash.is_erased(self.start, IMAGE_HEADER_SIZE)

    def image_data(self) -> bytes:
        """The slot's bytes an image may occupy (up to the trailer's room)."""
        return self.flash.read(self.start, self.capacity)

    def parse(self, size: int | None = None) -> Image:
        """The image in the slot (structure only); raises the typed :class:`ImageError`.  ``size`` is the size
        a transfer announced: the bytes looked at (up to the whole slot, for an image padded to its size)."""
        data = self.image_data() if size is None else self.flash.read(self.start, min(size, self.size))
        image = parse_image(data)
        if image.end > self.capacity:
            raise ImageTooLargeError(f"too-large: the image runs into the {self.name} slot's trailer")
        return image

    def image_extent(self) -> int:
        """Bytes the slot's image occupies (0 when there is no parseable image)."""
        try:
            return self.parse().end
        except ImageError:
            return 0


@dataclass(frozen=True)
class BootResult:
    """What the bootloader decided: the image it starts (``None``: none valid, stay in recovery)."""

    image: VerifiedImage | None
    swap: SwapType
    under_test: bool  # the running image was booted for a test and is not confirmed yet
    messages: tuple[str, ...]
    error: str | None = None


@dataclass(frozen=True)
class _Record:
    kind: _Kind
    arg: int
    sector: int
    count: int
    swap_id: int


class StatusLog:
    """The swap status log: CRC-protected 16-byte records filling the state area (all its sectors)."""

    def __init__(self, flash: Flash, start: int, size: int) -> None:
        self.flash = flash
        self.sectors = flash.sectors_in(start, size)
        self.start = start
        self.size = size

    def records(self) -> tuple[list[_Record], int]:
        """Valid records in order, and the address of the first free (erased) record slot."""
        out: list[_Record] = []
        data = self.flash.read(self.start, self.size)
        free = self.start
        for off in range(0, self.size - RECORD_SIZE + 1, RECORD_SIZE):
            raw = data[off : off + RECORD_SIZE]
            if raw.count(ERASED) == RECORD_SIZE:
                continue
            free = self.start + off + RECORD_SIZE
            magic, kind, arg, sector, count, swap_id, crc = _RECORD.unpack(raw)
            if magic != _RECORD_MAGIC or crc != zlib.crc32(raw[:12]) or kind not in (1, 2, 3):
                continue  # a record cut half-way, or what an interrupted erase left
            out.append(_Record(_Kind(kind), arg, sector, count, swap_id))
        return out, free

    def in_progress(self) -> tuple[_Record, _Record] | None:
        """``(BEGIN, last record)`` of a swap that has no DONE record, else ``None``."""
        records, _ = self.records()
        begin: _Record | None = None
        last: _Record | None = None
        for rec in records:
            if rec.kind is _Kind.BEGIN:
                begin, last = rec, rec
            elif begin is not None and rec.swap_id == begin.swap_id:
                if rec.kind is _Kind.DONE:
                    begin = last = None
                else:
                    last = rec
        if begin is None or last is None:
            return None
        return begin, last

    def last_swap_id(self) -> int:
        records, _ = self.records()
        return max((r.swap_id for r in records), default=0)

    def room(self) -> int:
        """Free record slots left."""
        _, free = self.records()
        return (self.start + self.size - free) // RECORD_SIZE

    def erase(self) -> None:
        """Erase the log, first sector first: a record can only outlive the records before it, so a cut
        part-way never leaves a BEGIN whose DONE is gone."""
        for sector in self.sectors:
            if not self.flash.is_erased(sector.start, sector.size):
                self.flash.erase_sector(sector.index)

    def append(self, kind: _Kind, *, arg: int = 0, sector: int = 0, count: int = 0, swap_id: int = 0) -> None:
        _, free = self.records()
        if free + RECORD_SIZE > self.start + self.size:
            raise RuntimeError("swap status log is full")  # cannot happen: begin() makes room first
        body = struct.pack("<HBBHHI", _RECORD_MAGIC, kind, arg, sector, count, swap_id)
        self.flash.program(free, body + struct.pack("<I", zlib.crc32(body)))


_CRYPTO_KEY = "swap_keys"  # the image keys of the swap in progress, in this module's state entry


@dataclass(frozen=True)
class _Crypto:
    """An image's AES key and where its payload lies in its slot (slot offsets ``start .. end``)."""

    key: bytes
    start: int
    end: int

    @classmethod
    def load(cls, entry: object) -> _Crypto | None:
        if not isinstance(entry, dict):
            return None
        try:
            return cls(bytes.fromhex(str(entry["key"])), int(entry["start"]), int(entry["end"]))
        except (KeyError, ValueError):
            return None

    def apply(self, offset: int, data: bytes) -> bytes:
        """``data`` (at slot offset ``offset``) with the payload bytes in it en/decrypted (CTR is symmetric)."""
        lo, hi = max(offset, self.start), min(offset + len(data), self.end)
        if lo >= hi:
            return data
        done = aes_ctr_at(self.key, lo - self.start, data[lo - offset : hi - offset])
        return data[: lo - offset] + done + data[hi - offset :]


def _enc_scheme(key: EncryptionPrivateKey | None) -> str | None:
    if key is None:
        return None
    if isinstance(key, rsa.RSAPrivateKey):
        return "rsa-oaep"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ecies-p256"
    return "ecies-x25519"


class Bootloader:
    """MCUboot-style boot of ``flash``: decide, swap (or resume a swap), check, pick the image to run.

    ``state`` is the persisted dict (the security counter lives in ``state["boot"]``); ``keys`` the trusted
    public keys; ``say`` receives the boot log lines (MCUboot's own messages, more or less)."""

    def __init__(
        self,
        flash: Flash,
        chip: ChipProfile,
        keys: Sequence[TrustedKey],
        state: dict[str, Any],
        *,
        enc_key: EncryptionPrivateKey | None = None,
        say: Callable[[str], None] | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.flash = flash
        self.chip = chip
        self.keys = list(keys)
        self.enc_key = enc_key
        self.state = state
        layout = chip.layout
        # a swapping bootloader runs every image from the primary slot: that is where ROM_FIXED must point
        self.primary = SlotView(flash, "primary", *layout.primary)
        self.secondary = SlotView(flash, "secondary", *layout.secondary, run_address=layout.primary[0])
        self.scratch = flash.sector_at(layout.scratch[0])
        self.log = StatusLog(flash, *layout.state)
        self._say = say
        self._progress = progress
        self.messages: list[str] = []
        self._crypto: tuple[_Crypto | None, _Crypto | None] = (None, None)
        if len(self.primary.sectors) != len(self.secondary.sectors) or any(
            p.size != s.size for p, s in zip(self.primary.sectors, self.secondary.sectors, strict=True)
        ):
            raise ValueError(f"{chip.name}: primary and secondary slots need the same sector map")
        if max(s.size for s in self.primary.sectors) > self.scratch.size:
            raise ValueError(f"{chip.name}: the scratch sector is smaller than a slot sector")

    # -- persisted values ------------------------------------------------------------------------------------
    @property
    def _store(self) -> dict[str, Any]:
        entry = self.state.setdefault(STATE_KEY, {})
        assert isinstance(entry, dict)
        return entry

    @property
    def security_counter(self) -> int:
        return int(self._store.get("security_counter", 0))

    def _note(self, text: str) -> None:
        self.messages.append(text)
        log.info("boot: %s", text)
        if self._say is not None:
            self._say(text)

    # -- checks ----------------------------------------------------------------------------------------------
    @property
    def capabilities(self) -> Capabilities:
        """What this bootloader verifies and decrypts (its INFO lists it): the signature types of its trusted
        keys with the digests MCUboot pairs them with, the scheme of its encryption key; no decompression (a
        swapping MCUboot does not decompress)."""
        kinds = {key_type(k) for k in self.keys if not isinstance(k, bytes | bytearray)}
        return capabilities_for(kinds, _enc_scheme(self.enc_key))

    def plain_image(self, slot: SlotView, image: Image) -> Image:
        """``image`` (read from ``slot``) with its payload in the clear: an encrypted image in the secondary
        slot decrypted with the device's key (:class:`NoDecryptKeyError` without one that fits); the primary
        slot's payload is plain already (the swap decrypted it), as is any unencrypted image."""
        if not is_encrypted(image) or slot is self.primary:
            return image
        if self.enc_key is None:
            raise NoDecryptKeyError(
                "no-decrypt-key: the image is encrypted and this device holds no decryption key",
                hint="configure the device with the private key the image was encrypted for (emulate --enc-key)",
            )
        try:
            return decrypted_image(image, self.enc_key)
        except ImageError as err:
            raise NoDecryptKeyError(
                f"no-decrypt-key: the device's {_enc_scheme(self.enc_key)} key does not decrypt the image ({err})",
                hint="encrypt the image for this device's public key (sign -E)",
            ) from err

    def validate(
        self, slot: SlotView, size: int | None = None, *, min_security_counter: int | None = None
    ) -> VerifiedImage:
        """Every MCUboot check of ``slot``'s image (of its first ``size`` bytes, if given): the slot rules
        (:func:`protocol.image.slot.check_slot_rules`: bootable, ROM_FIXED, fit, padding to this slot's size),
        no compression (this bootloader swaps, so it does not decompress), decryption with the device's key
        (an encrypted image in the secondary slot), the signature checks, the security counter against the
        stored one (or ``min_security_counter``) and the dependencies (image 0 only, at the version that will
        run).  Raises the typed :class:`ImageError` of the first failure."""
        image = slot.parse(size)
        check_slot_rules(image, slot.geometry, data_size=size)
        if is_compressed(image):
            raise CompressedImageError(
                "compressed: the image is LZMA2-compressed; this swapping bootloader does not decompress"
                " (MCUboot decompresses only in overwrite-only mode)",
                hint="sign the image without --compression",
            )
        plain = self.plain_image(slot, image)
        floor = self.security_counter if min_security_counter is None else min_security_counter
        verified = verify_parsed(
            plain,
            keys=self.keys,
            chip_id=self.chip.dev_id,
            board_id=self.chip.board_id,
            min_security_counter=floor,
            decrypted=is_encrypted(plain),
        )
        check_dependencies(plain, {0: plain.version})
        return verified

    def update_floor(self) -> int:
        """The lowest security counter an update may carry: the stored counter, or the running confirmed
        image's if higher (this bootloader stores it at that image's next normal boot; a new image checked
        before that boot must not slip under it)."""
        floor = self.security_counter
        if self.primary.is_empty() or self.primary_under_test():
            return floor
        try:
            image = self.primary.parse()
            check_digest(image, decrypted=True)
        except ImageError:
            return floor
        return max(floor, image.security_counter or 0)

    def check_upload(self, slot: SlotView, size: int | None = None) -> VerifiedImage:
        """What the update agent's VERIFY checks: :meth:`validate` with the security counter at least
        :meth:`update_floor`, and the transfer's size judged as a file's (padding only to this slot's size)."""
        return self.validate(slot, size, min_security_counter=self.update_floor())

    def swap_type(self) -> SwapType:
        """MCUboot's swap-type table over the two trailers."""
        primary = self.primary.trailer()
        secondary = self.secondary.trailer()
        if secondary.magic is MagicState.GOOD:
            if secondary.image_ok is Flag.UNSET:
                return SwapType.TEST
            if secondary.image_ok is Flag.SET:
                return SwapType.PERM
        if (
            primary.magic is MagicState.GOOD
            and primary.image_ok is Flag.UNSET
            and primary.copy_done is Flag.SET
            and secondary.magic is MagicState.UNSET
        ):
            return SwapType.REVERT
        return SwapType.NONE

    def primary_under_test(self) -> bool:
        """The primary image was swapped in for a test and is not confirmed (the next reset reverts)."""
        t = self.primary.trailer()
        return t.magic is MagicState.GOOD and t.copy_done is Flag.SET and t.image_ok is Flag.UNSET

    # -- boot ------------------------------------------------------------------------------------------------
    def boot(self) -> BootResult:
        """Run the boot flow once (flash operations may raise :class:`~emulator.flash.PowerCut`)."""
        self.messages = []
        store = self._store
        store["boots"] = int(store.get("boots", 0)) + 1
        swap = SwapType.NONE
        pending = self.log.in_progress()
        if pending is not None:
            begin, last = pending
            swap = SwapType(begin.arg)
            self._note(f"resuming an interrupted {swap.name.lower()} swap (power was lost)")
            self._run_swap(begin, last)
        else:
            swap = self.swap_type()
            if swap in (SwapType.TEST, SwapType.PERM):
                try:
                    verified = self.validate(self.secondary)
                except NonBootableError:
                    # MCUboot: "no bootable image in slot" -- the secondary is left alone, nothing is swapped
                    self._note("image in the secondary slot is marked non-bootable: not swapping it in")
                    swap = SwapType.NONE
                except ImageError as err:
                    self._note(f"image in the secondary slot is not valid ({reason_of(err)}): erasing it")
                    self._erase_slot(self.secondary)
                    swap = SwapType.FAIL
                else:
                    if swap is SwapType.TEST and not self._primary_bootable():
                        # serial recovery into an empty device: a revert would leave nothing to run, so the
                        # image goes in permanently and its first boot is a normal one (counter raised)
                        self._note("no image in the primary slot to fall back on: installing permanently")
                        swap = SwapType.PERM
                    self._note(f"swap type: {swap.name.lower()}, to {verified.version}")
                    if not self._start_swap(swap):
                        swap = SwapType.NONE
            elif swap is SwapType.REVERT:
                self._note("swap type: revert (the test image was not confirmed)")
                if not self._start_swap(swap):
                    swap = SwapType.NONE
        try:
            verified = self.validate(self.primary)
        except ImageError as err:
            self._note(f"no bootable image in the primary slot ({reason_of(err)}): staying in the bootloader")
            return BootResult(
                image=None, swap=swap, under_test=False, messages=tuple(self.messages), error=reason_of(err)
            )
        under_test = self.primary_under_test()
        if not under_test:
            self._raise_counter(verified)
        self._note(f"booting {verified.version} from the primary slot{' (test)' if under_test else ''}")
        return BootResult(image=verified, swap=swap, under_test=under_test, messages=tuple(self.messages))

    def _primary_bootable(self) -> bool:
        try:
            self.validate(self.primary)
        except ImageError:
            return False
        return True

    def _raise_counter(self, image: VerifiedImage) -> None:
        counter = image.security_counter
        if counter is not None and counter > self.security_counter:
            self._store["security_counter"] = counter
            self._note(f"security counter raised to {counter}")

    # -- application side (boot_set_confirmed, boot_set_pending) --------------------------------------------
    def set_confirmed(self) -> bool:
        """``boot_set_confirmed()``: mark the running test image good.  True if it is (now) confirmed."""
        trailer = self.primary.trailer()
        if trailer.magic is not MagicState.GOOD:
            return True  # no trailer: a permanent image (e.g. factory-programmed)
        if trailer.image_ok is Flag.SET:
            return True
        if trailer.image_ok is Flag.BAD:
            return False
        return self.primary.write_image_ok()

    def set_pending(self, permanent: bool) -> bool:
        """``boot_set_pending()``: request a swap to the secondary image at the next reset."""
        slot = self.secondary
        trailer = slot.trailer()
        if trailer.magic is MagicState.BAD or trailer.image_ok is Flag.BAD:
            return False
        if permanent and not slot.write_image_ok():
            return False
        return slot.write_magic()

    # -- the swap --------------------------------------------------------------------------------------------
    def _swap_sectors(self, count: int) -> list[int]:
        """Slot sector indexes a swap covers: the first ``count`` plus the trailer's (last) sector."""
        last = len(self.primary.sectors) - 1
        return sorted(set(range(min(count, last + 1))) | {last})

    def _start_swap(self, swap: SwapType) -> bool:
        """Begin (and run) a swap; False, with nothing touched, when an encrypted image on either side has a
        key this device cannot unwrap (moving it would leave its plaintext in the secondary slot, or
        ciphertext in the primary)."""
        crypto = {"primary": self._crypto_of(self.primary), "secondary": self._crypto_of(self.secondary)}
        for slot in (self.primary, self.secondary):
            if crypto[slot.name] is None and self._encrypted(slot):
                self._note(f"the {slot.name} image is encrypted and this device cannot unwrap its key: not swapping")
                return False
        extent = max(self.primary.image_extent(), self.secondary.image_extent())
        count = len(self.flash.chip.sectors_in(self.primary.start, extent)) if extent else 0
        needed = 2 + 3 * len(self._swap_sectors(count))
        if self.log.room() < needed:
            self.log.erase()
        swap_id = (self.log.last_swap_id() + 1) & 0xFFFFFFFF
        # MCUboot writes the image keys into the trailer before the swap starts (boot_write_enc_key); here they
        # go into the persisted state, committed before the BEGIN record reaches the flash
        self._store[_CRYPTO_KEY] = {"swap_id": swap_id, **crypto}
        self.log.append(_Kind.BEGIN, arg=int(swap), count=count, swap_id=swap_id)
        begin = _Record(_Kind.BEGIN, int(swap), 0, count, swap_id)
        self._run_swap(begin, begin)
        return True

    def _encrypted(self, slot: SlotView) -> bool:
        try:
            return is_encrypted(slot.parse())
        except ImageError:
            return False

    def _crypto_of(self, slot: SlotView) -> dict[str, Any] | None:
        """How the payload of ``slot``'s image is en/decrypted while it moves: its AES key and the slot
        offsets of its payload; ``None`` for an unencrypted image."""
        try:
            image = slot.parse()
        except ImageError:
            return None
        if not is_encrypted(image):
            return None
        if self.enc_key is None:
            return None
        try:
            key = unwrap_image_key(image, self.enc_key)
        except ImageError:
            return None
        start = image.header.header_size
        return {"key": key.hex(), "start": start, "end": start + image.header.image_size}

    def _swap_crypto(self, swap_id: int) -> tuple[_Crypto | None, _Crypto | None]:
        entry = self._store.get(_CRYPTO_KEY)
        if not isinstance(entry, dict) or entry.get("swap_id") != swap_id:
            return None, None
        return _Crypto.load(entry.get("primary")), _Crypto.load(entry.get("secondary"))

    def _run_swap(self, begin: _Record, last: _Record) -> None:
        swap = SwapType(begin.arg)
        self._crypto = self._swap_crypto(begin.swap_id)
        indexes = self._swap_sectors(begin.count)
        steps = [(i, step) for i in indexes for step in _Step]
        position = 0
        if last.kind is _Kind.STEP:
            position = steps.index((last.sector, _Step(last.arg))) + 1
        total = len(steps)
        for n in range(position, total):
            index, step = steps[n]
            if self._progress is not None:
                self._progress("copy", n, total)
            self._do_step(swap, index, step, index == indexes[-1])
            self.log.append(_Kind.STEP, arg=int(step), sector=index, swap_id=begin.swap_id)
        self.log.append(_Kind.DONE, swap_id=begin.swap_id)
        self._store.pop(_CRYPTO_KEY, None)  # the keys are not kept once the swap is done
        self._crypto = (None, None)
        self._note(f"{swap.name.lower()} swap complete")

    def _do_step(self, swap: SwapType, index: int, step: _Step, last: bool) -> None:
        p = self.primary.sectors[index]
        s = self.secondary.sectors[index]
        scratch = self.scratch
        primary_crypto, secondary_crypto = self._crypto
        if step is _Step.TO_SCRATCH:  # the secondary sector as it is (still encrypted)
            self.flash.erase_sector(scratch.index)
            self._copy(s.start, scratch.start, s.size, self._keep(self.secondary, s, last))
        elif step is _Step.TO_SECONDARY:  # the primary image, encrypted again under its own key
            self.flash.erase_sector(s.index)
            offset = p.start - self.primary.start
            self._copy(
                p.start, s.start, p.size, self._keep(self.primary, p, last), crypto=primary_crypto, slot_offset=offset
            )
        else:  # the secondary image, decrypted on its way into the primary slot
            self.flash.erase_sector(p.index)
            offset = s.start - self.secondary.start
            keep = self._keep(self.secondary, s, last)
            self._copy(scratch.start, p.start, p.size, keep, crypto=secondary_crypto, slot_offset=offset)
            if last:
                slot = self.primary
                slot.write_field(slot.swap_size_addr, struct.pack("<I", 0))
                slot.write_field(slot.swap_info_addr, bytes([int(swap)]))
                slot.write_copy_done()
                if swap in (SwapType.PERM, SwapType.REVERT):
                    slot.write_image_ok()
                slot.write_magic()

    @staticmethod
    def _keep(slot: SlotView, sector: Sector, last: bool) -> int:
        """Bytes of ``sector`` a swap carries over (the trailer's room of the last sector stays behind)."""
        return slot.trailer_start - sector.start if last else sector.size

    def _copy(
        self, src: int, dst: int, size: int, keep: int, *, crypto: _Crypto | None = None, slot_offset: int = 0
    ) -> None:
        """Copy ``keep`` bytes (of a ``size``-byte sector) in ``COPY_CHUNK`` pieces, skipping erased chunks;
        with ``crypto``, the bytes of the image payload (the sector sits ``slot_offset`` into its slot) go
        through AES-CTR on the way (MCUboot's ``boot_copy_region``)."""
        del size
        for off in range(0, keep, COPY_CHUNK):
            n = min(COPY_CHUNK, keep - off)
            data = self.flash.read(src + off, n)
            if crypto is not None:
                data = crypto.apply(slot_offset + off, data)
            if data.count(ERASED) != n:
                self.flash.program_padded(dst + off, data)

    def _erase_slot(self, slot: SlotView) -> None:
        for sector in slot.sectors:
            if not self.flash.is_erased(sector.start, sector.size):
                self.flash.erase_sector(sector.index)
