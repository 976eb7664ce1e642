"""Typed image errors: one subclass of :class:`protocol.errors.ImageError` per failed check.

Every class carries a short stable ``reason`` slug (``bad-magic``, ``digest-mismatch``, ...) that other
packages (the emulated bootloader, the GUI, the relay) map to status codes or texts.  The slug never changes
once published; the message is for humans and may.
"""

from __future__ import annotations

from ..errors import ImageError

__all__ = [
    "BadMagicError",
    "BadSignatureError",
    "BadTlvError",
    "CapabilityError",
    "CompressedImageError",
    "DependencyError",
    "DigestMismatchError",
    "ImageError",
    "ImageTooLargeError",
    "InputFormatError",
    "KeyFileError",
    "MisplacedTrailerError",
    "MissingTlvError",
    "NoDecryptKeyError",
    "NonBootableError",
    "NotAnApplicationError",
    "OverlapError",
    "RomAddressError",
    "SecurityCounterError",
    "SparseInputError",
    "TlvOverrunError",
    "TruncatedError",
    "UnknownKeyError",
    "UnsupportedError",
    "VersionError",
    "WrongBoardError",
    "WrongChipError",
    "WrongKeyTypeError",
    "reason_of",
]


class _ReasonedImageError(ImageError):
    """Base of the typed image errors; ``reason`` is a stable slug."""

    reason: str = "invalid-image"


class TruncatedError(_ReasonedImageError):
    """The data ends before the header, the payload or the TLV area it declares."""

    reason = "truncated"


class BadMagicError(_ReasonedImageError):
    """The header magic is not MCUboot's ``0x96f3b83d`` (or a TLV info magic is wrong)."""

    reason = "bad-magic"


class BadTlvError(_ReasonedImageError):
    """A TLV area or record is malformed: wrong info length, a record that is not allowed where it is."""

    reason = "bad-tlv"


class TlvOverrunError(_ReasonedImageError):
    """A TLV length runs past the end of its TLV area or of the data."""

    reason = "tlv-overrun"


class ImageTooLargeError(_ReasonedImageError):
    """Declared sizes are absurd (bigger than the data or the slot)."""

    reason = "too-large"


class MissingTlvError(_ReasonedImageError):
    """A required TLV (SHA-256, signature, hardware tag, security counter) is absent."""

    reason = "missing-tlv"


class DigestMismatchError(_ReasonedImageError):
    """The SHA-256 over header, payload and protected TLVs differs from the SHA-256 TLV."""

    reason = "digest-mismatch"


class BadSignatureError(_ReasonedImageError):
    """The signature does not verify with the key it names."""

    reason = "bad-signature"


class UnknownKeyError(_ReasonedImageError):
    """The image was signed by a key that is not among the trusted keys."""

    reason = "unknown-key"


class WrongKeyTypeError(_ReasonedImageError):
    """The key is of the wrong kind (e.g. an ECDSA key for an Ed25519 signature, RSA, X25519)."""

    reason = "wrong-key-type"


class WrongChipError(_ReasonedImageError):
    """The hardware-compatibility tag names another chip (DEV_ID)."""

    reason = "wrong-chip"


class WrongBoardError(_ReasonedImageError):
    """The hardware-compatibility tag names another board."""

    reason = "wrong-board"


class SecurityCounterError(_ReasonedImageError):
    """The image's security counter is lower than the device's (a rollback)."""

    reason = "security-counter"


class UnsupportedError(_ReasonedImageError):
    """A valid MCUboot feature we do not handle (encrypted or compressed images, RSA, SHA-384...)."""

    reason = "unsupported"


class KeyFileError(_ReasonedImageError):
    """A key file cannot be read as a PEM/DER private or public key."""

    reason = "bad-key-file"


class InputFormatError(_ReasonedImageError):
    """An input file (.bin, .hex, .srec, .elf) is malformed."""

    reason = "bad-input"


class OverlapError(_ReasonedImageError):
    """Two records or segments of an input file write the same address."""

    reason = "overlap"


class SparseInputError(_ReasonedImageError):
    """An input file spans an absurd address range (gaps that would fill megabytes with 0xFF)."""

    reason = "sparse-input"


class NonBootableError(_ReasonedImageError):
    """The header says ``IMAGE_F_NON_BOOTABLE`` (``imgtool sign --non-bootable``): MCUboot never boots it."""

    reason = "non-bootable"


class RomAddressError(_ReasonedImageError):
    """``IMAGE_F_ROM_FIXED`` names another address than the slot the image runs from."""

    reason = "rom-fixed"


class MisplacedTrailerError(_ReasonedImageError):
    """The file carries slot padding and a trailer (``imgtool sign --pad``) for another slot size: MCUboot only
    looks for the trailer at the end of its own slot, so that trailer would be image data in the wrong place."""

    reason = "misplaced-trailer"


class VersionError(_ReasonedImageError):
    """The image is not newer than the running one (``reason`` ``downgrade`` or ``same-version``)."""

    reason = "downgrade"

    def __init__(self, message: str, *, reason: str = "downgrade", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


class NoDecryptKeyError(UnsupportedError):
    """An encrypted image, and no private key that unwraps its AES key: none given (the device decrypts
    nothing), one of another kind (an X25519 device, an ``ENCRSA2048`` image), or another device's key."""

    reason = "no-decrypt-key"


class DependencyError(_ReasonedImageError):
    """A DEPENDENCY TLV (``imgtool sign -d``) names an image the device does not have, or a version of it
    the device will not run."""

    reason = "dependency"


class CompressedImageError(UnsupportedError):
    """A compressed image for a bootloader that does not decompress (MCUboot decompresses only in
    overwrite-only mode; a swapping bootloader refuses compressed images)."""

    reason = "compressed"


class CapabilityError(_ReasonedImageError):
    """The image needs a signature type or digest the device does not verify (``reason``
    ``unsupported-signature`` or ``unsupported-digest``), from the capabilities its INFO lists."""

    reason = "unsupported-signature"

    def __init__(self, message: str, *, reason: str = "unsupported-signature", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


class NotAnApplicationError(_ReasonedImageError):
    """For a classic IAP device: the file is not a raw Cortex-M application for it (vector table check)."""

    reason = "not-an-application"


def reason_of(err: BaseException) -> str:
    """The stable reason slug of ``err`` (``"invalid-image"`` for a plain :class:`ImageError`)."""
    return getattr(err, "reason", "invalid-image")
