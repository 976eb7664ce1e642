"""Handlers of ``info``, ``flash`` and ``monitor`` (imported only when one of them runs)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..console import (
    ConsoleReporter,
    format_bytes,
    format_flash_summary,
    format_next_steps,
    next_step_commands,
    write_json,
)
from ..drivers.link import SerialLink
from ..errors import ImageError
from ..flow import FlashOptions, IapMenuError, flash_image, read_info, slot_json
from ..image import load_public_key
from ..pump import pump, with_deadline
from ..sansio import DeviceLog, Event
from ..update.events import CommandComplete
from ..update.host import HostConnection
from ..update.messages import DIGESTS, ENCRYPTION_SCHEMES, SIGNATURE_TYPES, DeviceInfo, LogLevel

__all__ = ["cmd_flash", "cmd_info", "cmd_monitor", "info_to_json"]


def info_to_json(info: DeviceInfo) -> dict[str, object]:
    return {
        "protocol_version": f"{info.protocol_version >> 8}.{info.protocol_version & 0xFF}",
        "bootloader_version": info.bootloader_version,
        "chip_id": f"0x{info.chip_id:03x}",
        "board_id": info.board_id,
        "uid": info.uid.hex(),
        "flash": {
            "base": f"0x{info.flash.base:08x}",
            "size": info.flash.size,
            "sectors": [{"count": r.count, "size": r.size} for r in info.flash.sectors],
            "slots": [{"index": s.index, "address": f"0x{s.address:08x}", "size": s.size} for s in info.flash.slots],
        },
        "slots": [slot_json(s) for s in info.slots],
        "limits": {"max_block": info.max_block, "max_window": info.max_window, "ram_buffer": info.ram_buffer},
        "options": [o.name.lower() for o in type(info.options) if o and o in info.options and o.name],
        "deflate_wbits": info.deflate_wbits,
        "baud_rates": list(info.baud_rates),
        "key_hashes": [h.hex() for h in info.key_hashes],
        "capabilities": None if info.capabilities is None else info.capabilities.describe(),
        "partial": None
        if info.partial is None
        else {
            "slot": info.partial.slot,
            "size": info.partial.size,
            "written": info.partial.written,
            "digest": info.partial.digest.hex(),
        },
    }


def _format_capabilities(info: DeviceInfo) -> list[str]:
    caps = info.capabilities
    if caps is None:
        return ["checks       not reported (a protocol 1.0/1.1 bootloader)"]
    sigs = ", ".join(s for s in SIGNATURE_TYPES if s in caps.signatures) or "none"
    digests = ", ".join(d.upper() for d in DIGESTS if d in caps.digests) or "none"
    enc = ", ".join(e for e in ENCRYPTION_SCHEMES if e in caps.encryption)
    aes = "/".join(f"AES-{b}" for b in sorted(caps.aes_bits))
    return [
        f"signatures   {sigs}; digests {digests}",
        f"encryption   {enc + ' (' + aes + ')' if enc else 'none: the device decrypts no image'}"
        f"; compressed images {'decompressed' if caps.decompress else 'refused'}",
    ]


def _format_info(info: DeviceInfo) -> str:
    j = info_to_json(info)
    lines = [
        f"chip id      {j['chip_id']}   board {info.board_id}   uid {j['uid']}",
        f"bootloader   {info.bootloader_version or '?'}   protocol {j['protocol_version']}",
        f"flash        {format_bytes(info.flash.size)} at 0x{info.flash.base:08x}, sectors "
        + ", ".join(f"{r.count}x{format_bytes(r.size)}" for r in info.flash.sectors),
        f"limits       block {info.max_block} B, window {info.max_window}, RAM buffer {info.ram_buffer} B",
        f"options      {', '.join(j['options']) or 'none'}"  # type: ignore[arg-type]
        + (f"; baud {', '.join(map(str, info.baud_rates))}" if info.baud_rates else ""),
        "slots",
    ]
    regions = {s.index: s for s in info.flash.slots}
    for slot in info.slots:
        region = regions.get(slot.index)
        where = f"0x{region.address:08x} {format_bytes(region.size):>10}" if region else ""
        lines.append(
            f"  [{slot.index}] {where}  {slot.state.name.lower():<17} {slot.version_text:<12}"
            f" {slot.image_size:>8} B  {slot.digest.hex()[:16]}  counter {slot.security_counter}"
        )
    for h in info.key_hashes:
        lines.append(f"trusted key  {h.hex()}")
    lines.extend(_format_capabilities(info))
    if info.partial is not None:
        p = info.partial
        lines.append(f"resumable    {p.written}/{p.size} bytes of {p.digest.hex()[:16]} into slot {p.slot}")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    reporter = ConsoleReporter(messages=False)  # notes only ("busy, retrying"): the info itself goes to stdout
    try:
        with SerialLink(args.port, args.baud) as link:
            info = link.execute(read_info(HostConnection(baud=args.baud), time.monotonic, reporter))
    except IapMenuError as err:
        raise _for_port(err, args.port) from err
    finally:
        reporter.close()
    if args.json:
        write_json(info_to_json(info))
    else:
        sys.stdout.write(_format_info(info) + "\n")
    return 0


def _for_port(err: IapMenuError, port: str) -> IapMenuError:
    hint = (err.hint or "").replace("-p PORT", f"-p {port}")
    return IapMenuError(err.message, hint=hint)


def _read_image(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise ImageError(f"cannot read {path}: {err.strerror}") from err


def cmd_flash(args: argparse.Namespace) -> int:
    image = _read_image(args.image)
    reporter = ConsoleReporter(quiet=args.quiet)
    options = FlashOptions(
        protocol=args.protocol,
        compress=args.compress,
        fast_baud=args.fast_baud,
        resume=args.resume,
        permanent=args.permanent,
        reboot=args.reboot,
        confirm=args.confirm,
        baud=args.baud,
        allow_downgrade=args.allow_downgrade,
        force=args.force,
        keys=tuple(load_public_key(_read_image(path)) for path in args.key),
    )
    try:
        with SerialLink(args.port, args.baud) as link:
            result = link.execute(flash_image(image, options, on_event=reporter, clock=time.monotonic, name=args.image))
    except IapMenuError as err:
        raise _for_port(err, args.port) from err
    finally:
        reporter.close()
    if args.json:
        out = result.to_json()
        out["next_commands"] = next_step_commands(result, args.port)
        write_json(out)
    elif not args.quiet:
        sys.stderr.write(format_flash_summary(result) + "\n")
    if not args.json and (not args.quiet or not result.complete):
        sys.stderr.write(format_next_steps(result, args.port) + "\n")
    return 0


_LEVELS = {
    "error": LogLevel.ERROR,
    "warning": LogLevel.WARNING,
    "info": LogLevel.INFO,
    "debug": LogLevel.DEBUG,
}
_LEVEL_NAMES = {int(v): k for k, v in _LEVELS.items()}


def cmd_monitor(args: argparse.Namespace) -> int:
    def on_event(event: Event) -> None:
        if not isinstance(event, DeviceLog):
            return
        if args.json:
            record = {"t_ms": event.timestamp_ms, "level": _LEVEL_NAMES.get(event.level, event.level)}
            sys.stdout.write(json.dumps({**record, "text": event.text}) + "\n")
            sys.stdout.flush()
        else:
            level = _LEVEL_NAMES.get(event.level, str(event.level)).upper()
            sys.stdout.write(f"[{event.timestamp_ms / 1000:10.3f}] {level:<7} {event.text}\n")
            sys.stdout.flush()

    host = HostConnection(baud=args.baud)
    deadline = None if args.duration is None else time.monotonic() + args.duration
    with SerialLink(args.port, args.baud) as link:
        host.set_logging(int(_LEVELS[args.level]))
        link.execute(pump(host, time.monotonic(), until=lambda e: isinstance(e, CommandComplete), on_event=on_event))
        try:
            link.execute(with_deadline(pump(host, time.monotonic(), on_event=on_event), deadline))
        except KeyboardInterrupt:
            return 0
    return 0
