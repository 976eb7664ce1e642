"""What a firmware file is, and whether it fits the connected device (the host-side checks, no Qt)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from protocol.errors import ImageError, Stm32OtaError
from protocol.image.errors import reason_of
from protocol.image.loaders import guess_format, load_firmware
from protocol.image.mcuboot import parse_image
from protocol.preflight import GENERIC_IAP, PreflightReport, check_application, check_image

from .operations import DeviceSnapshot

__all__ = ["FIRMWARE_SUFFIXES", "FileSummary", "Verdict", "inspect_file", "judge"]

FIRMWARE_SUFFIXES = (".bin", ".hex", ".ihex", ".srec", ".s19", ".s28", ".s37", ".mot", ".elf", ".img")
MAX_FILE_BYTES = 64 * 1024 * 1024  # no STM32 has more flash than this; a bigger file is a mistake


@dataclass(frozen=True, kw_only=True)
class FileSummary:
    path: Path
    data: bytes
    format: str  # bin, hex, srec, elf
    kind: str  # "signed" (an MCUboot image) or "application" (a raw binary)
    size: int  # bytes that would be sent (the binary form)
    sha256: str
    address: int | None = None
    version: str | None = None
    security_counter: int | None = None
    key_hash: str | None = None
    signature_type: str | None = None
    chip_id: int | None = None
    board_id: int | None = None
    problem: str | None = None  # the file cannot be read at all

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True, kw_only=True)
class Verdict:
    ok: bool
    reason: str  # a sentence: why Flash is enabled or not
    hint: str | None = None
    slug: str | None = None  # ImageError's reason slug
    report: PreflightReport | None = None


def inspect_file(path: Path) -> FileSummary:
    """Read and describe ``path``; a file that cannot be read or parsed gives a summary with ``problem``."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImageError(f"{path.name} is {size} bytes: larger than any STM32's flash")
        data = path.read_bytes()
    except OSError as err:
        return FileSummary(path=path, data=b"", format="?", kind="?", size=0, sha256="", problem=err.strerror)
    except ImageError as err:
        return FileSummary(path=path, data=b"", format="?", kind="?", size=size, sha256="", problem=str(err))
    fmt = guess_format(path.name, data)
    try:
        firmware = load_firmware(data, fmt)
    except Stm32OtaError as err:
        return FileSummary(
            path=path,
            data=data,
            format=fmt,
            kind="?",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            problem=str(err),
        )
    binary = firmware.data
    common = {
        "path": path,
        "data": data,
        "format": fmt,
        "size": len(binary),
        "sha256": hashlib.sha256(binary).hexdigest(),
        "address": firmware.address,
    }
    try:
        image = parse_image(binary)
    except ImageError:
        return FileSummary(kind="application", **common)  # type: ignore[arg-type]
    from protocol.image.info import describe_image

    described = describe_image(image)
    tag = described.get("hw_tag") or {}
    return FileSummary(
        kind="signed",
        version=str(image.version),
        security_counter=image.security_counter,
        key_hash=image.key_hash.hex() if image.key_hash is not None else None,
        signature_type=str(image.signature_type) if image.signature_type else None,
        chip_id=tag.get("chip_id"),
        board_id=tag.get("board_id"),
        **common,  # type: ignore[arg-type]
    )


def judge(
    summary: FileSummary,
    device: DeviceSnapshot | None,
    *,
    allow_downgrade: bool = False,
    force: bool = False,
) -> Verdict:
    """The pre-flight checks for this file on this device: Flash is allowed only with ``ok``."""
    if summary.problem:
        return Verdict(ok=False, reason=f"{summary.name} cannot be used: {summary.problem}", slug="bad-input")
    if device is None:
        return Verdict(ok=False, reason="connect a device to check the file against it")
    try:
        if device.kind == "iap":
            report = check_application(summary.data, GENERIC_IAP, name=summary.name)
        else:
            assert device.info is not None
            report = check_image(
                summary.data,
                device.info,
                slot=1,
                allow_downgrade=allow_downgrade,
                force=force,
                name=summary.name,
            )
    except ImageError as err:
        return Verdict(ok=False, reason=str(err), hint=err.hint, slug=reason_of(err))
    if report.kind == "application":
        return Verdict(ok=True, reason=f"a raw application for the IAP area ({len(report.data)} bytes)", report=report)
    running = f" over {report.running_version}" if report.running_version else ""
    signature = "signature checked" if report.signature_checked else "the device checks the signature"
    return Verdict(ok=True, reason=f"image {report.version}{running} fits slot 1; {signature}", report=report)
