"""The core's words in the window's language: phases, slot and gateway states, typed errors, pre-flight reasons
and the flow's step messages.

The core (``protocol/``) speaks English and has no Qt; what it says is typed (an error class, a reason slug, a
:class:`~protocol.update.status.Status` code, a :class:`~protocol.progress.Phase`) or one of a known set of
sentences.  Here each is mapped to a translatable template (``QT_TRANSLATE_NOOP``, collected by
``pyside6-lupdate``) and rendered at display time, so a language switch re-renders it.  Anything not in the
tables is shown as the core wrote it: never hidden, never a traceback.  The log console and the CSV report stay
in the core's English on purpose (they are read by support and by scripts).

``tests/updater_gui/test_messages.py`` raises the real errors (a missing port, a silent device, a refused
image) and checks each maps, so a changed core sentence fails a test instead of silently reverting to English.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication

from protocol.errors import Cancelled, DeviceError, ProtocolTimeoutError, Stm32OtaError
from protocol.image.errors import reason_of

if TYPE_CHECKING:
    from .inspection import Verdict

__all__ = [
    "error_hint",
    "error_text",
    "flow_message",
    "gateway_message",
    "gateway_state_label",
    "phase_label",
    "verdict_hint",
    "verdict_text",
]


def QT_TRANSLATE_NOOP(context: str, text: str) -> str:  # the name pyside6-lupdate collects; typed, unlike Qt's
    """Mark ``text`` for translation in ``context``; it is translated where it is shown."""
    return text


def _tr(context: str, text: str) -> str:
    return QCoreApplication.translate(context, text)


_PHASES = {
    "connect": QT_TRANSLATE_NOOP("Phase", "connect"),
    "probe": QT_TRANSLATE_NOOP("Phase", "probe"),
    "read": QT_TRANSLATE_NOOP("Phase", "read back"),
    "other": QT_TRANSLATE_NOOP("Phase", "device work"),
    "info": QT_TRANSLATE_NOOP("Phase", "read device"),
    "check": QT_TRANSLATE_NOOP("Phase", "check image"),
    "erase": QT_TRANSLATE_NOOP("Phase", "erase"),
    "transfer": QT_TRANSLATE_NOOP("Phase", "transfer"),
    "verify": QT_TRANSLATE_NOOP("Phase", "verify"),
    "activate": QT_TRANSLATE_NOOP("Phase", "activate"),
    "baud": QT_TRANSLATE_NOOP("Phase", "baud switch"),
    "reboot": QT_TRANSLATE_NOOP("Phase", "reboot"),
    "confirm": QT_TRANSLATE_NOOP("Phase", "confirm"),
    "done": QT_TRANSLATE_NOOP("Phase", "done"),
    "cancelled": QT_TRANSLATE_NOOP("Phase", "cancelled"),
    "error": QT_TRANSLATE_NOOP("Phase", "error"),
    "waiting": QT_TRANSLATE_NOOP("Phase", "waiting"),
    "rollback": QT_TRANSLATE_NOOP("Phase", "roll back"),
    "boot": QT_TRANSLATE_NOOP("Phase", "boot"),
    "download": QT_TRANSLATE_NOOP("Phase", "download"),
}


def phase_label(phase: str) -> str:
    """A :class:`~protocol.progress.Phase` (or the app's own step name) as the window shows it."""
    text = _PHASES.get(str(phase))
    return _tr("Phase", text) if text else str(phase)


_GATEWAY_STATES = {
    "starting": QT_TRANSLATE_NOOP("Gateway", "starting"),
    "absent": QT_TRANSLATE_NOOP("Gateway", "no device"),
    "idle": QT_TRANSLATE_NOOP("Gateway", "idle"),
    "downloading": QT_TRANSLATE_NOOP("Gateway", "downloading"),
    "relaying": QT_TRANSLATE_NOOP("Gateway", "updating"),
    "error": QT_TRANSLATE_NOOP("Gateway", "error"),
}


def gateway_state_label(state: str) -> str:
    text = _GATEWAY_STATES.get(state)
    return _tr("Gateway", text) if text else state


# (pattern over the core's sentence, template with the pattern's named groups)
Table = Sequence[tuple[re.Pattern[str], str]]


def _table(context: str, rows: Sequence[tuple[str, str]]) -> tuple[str, Table]:
    return context, [(re.compile(pattern, re.DOTALL), template) for pattern, template in rows]


def _render(table: tuple[str, Table], text: str) -> str | None:
    context, rows = table
    for pattern, template in rows:
        match = pattern.fullmatch(text)
        if match is not None:
            return _tr(context, template).format(**match.groupdict())
    return None


_ERRORS = _table(
    "Errors",
    [
        (r"permission denied opening (?P<url>.+)", QT_TRANSLATE_NOOP("Errors", "Permission denied opening {url}.")),
        (r"(?P<url>.+) is busy", QT_TRANSLATE_NOOP("Errors", "{url} is in use by another program.")),
        (r"no such port: (?P<url>.+)", QT_TRANSLATE_NOOP("Errors", "There is no port {url}.")),
        (r"connection refused by (?P<url>.+)", QT_TRANSLATE_NOOP("Errors", "{url} refused the connection.")),
        (
            r"(?P<url>.+) failed with an I/O error: .*",
            QT_TRANSLATE_NOOP("Errors", "{url} failed: the device was unplugged or hung up the line."),
        ),
        (
            r"(?P<url>.+) reported data but returned none: .*",
            QT_TRANSLATE_NOOP("Errors", "{url} stopped answering: the device was unplugged."),
        ),
        (
            r"the connection to (?P<url>.+) was closed by the other end",
            QT_TRANSLATE_NOOP("Errors", "The connection to {url} was closed by the other end."),
        ),
        (
            r"(?P<url>.+) is not a serial port \((?P<what>.+)\)",
            QT_TRANSLATE_NOOP("Errors", "{url} is not a serial port ({what})."),
        ),
        (
            r"no reply to (?P<what>.+?)(?: \(at byte \d+ of the record\))? after \d+ tries: nothing came back",
            QT_TRANSLATE_NOOP("Errors", "The device did not answer ({what}): nothing came back."),
        ),
        (
            r"no reply to (?P<what>.+?): only (?P<n>\d+) bytes that are no stm32ota frame came back",
            QT_TRANSLATE_NOOP(
                "Errors", "The device did not answer ({what}): {n} bytes came back that are not stm32ota frames."
            ),
        ),
        (
            r"no reply to (?P<what>.+?): (?P<n>\d+) answers arrived damaged: .*",
            QT_TRANSLATE_NOOP("Errors", "The device did not answer ({what}): {n} answers arrived damaged."),
        ),
        (
            r"no reply to (?P<what>.+?): the device reports it is busy .*",
            QT_TRANSLATE_NOOP("Errors", "The device is busy (swapping or erasing) and did not answer ({what})."),
        ),
    ],
)

# Hints the core gives with those errors (exact sentences; the ones naming commands stay as they are)
_HINTS = {
    "add your user to the 'dialout' group (sudo usermod -aG dialout $USER), then log in again": QT_TRANSLATE_NOOP(
        "Errors", "add your user to the 'dialout' group (sudo usermod -aG dialout $USER), then log in again"
    ),
    "close the other program using the port (terminal, monitor, ModemManager)": QT_TRANSLATE_NOOP(
        "Errors", "close the other program using the port (terminal, serial monitor, ModemManager)"
    ),
    "check the cable and the port name (ls /dev/ttyUSB* /dev/ttyACM*)": QT_TRANSLATE_NOOP(
        "Errors", "check the cable and the port name"
    ),
    "is the emulator or the serial server running?": QT_TRANSLATE_NOOP(
        "Errors", "is the emulator or the serial server running?"
    ),
    "reconnect the cable and run the command again": QT_TRANSLATE_NOOP("Errors", "reconnect the cable and try again"),
    "check the port, the cable, the baud rate, and that the device is in its bootloader": QT_TRANSLATE_NOOP(
        "Errors", "check the port, the cable, the baud rate, and that the device is in its bootloader"
    ),
    "check the baud rate (-b); the port may not be an stm32ota bootloader": QT_TRANSLATE_NOOP(
        "Errors", "check the baud rate; the port may not be an stm32ota bootloader"
    ),
    "lower the baud rate or check the cable": QT_TRANSLATE_NOOP("Errors", "lower the baud rate or check the cable"),
    "it may be swapping slots or erasing: wait until it is done and run the command again": QT_TRANSLATE_NOOP(
        "Errors", "it may be swapping slots or erasing: wait until it is done and try again"
    ),
}

# DeviceError by the device's status name (protocol.update.status.Status)
_DEVICE = {
    "NO_ROLLBACK": QT_TRANSLATE_NOOP("Errors", "The device has no previous image to roll back to."),
    "NOT_CONFIRMABLE": QT_TRANSLATE_NOOP("Errors", "The running image is not under test: there is nothing to confirm."),
    "NOT_ALLOWED": QT_TRANSLATE_NOOP("Errors", "The device does not allow that now."),
    "BUSY": QT_TRANSLATE_NOOP("Errors", "The device is busy; try again in a moment."),
    "BAD_SIGNATURE": QT_TRANSLATE_NOOP("Errors", "The device refused the image: bad signature."),
    "UNKNOWN_KEY": QT_TRANSLATE_NOOP("Errors", "The device refused the image: it does not trust the signing key."),
    "WRONG_CHIP": QT_TRANSLATE_NOOP("Errors", "The device refused the image: it is built for another chip."),
    "SECURITY_COUNTER": QT_TRANSLATE_NOOP("Errors", "The device refused the image: its security counter is too low."),
    "DIGEST_MISMATCH": QT_TRANSLATE_NOOP("Errors", "The device refused the image: its digest does not match."),
    "TOO_BIG": QT_TRANSLATE_NOOP("Errors", "The device refused the image: it does not fit the slot."),
    "NO_IMAGE": QT_TRANSLATE_NOOP("Errors", "There is no image in that slot."),
    "ERASE_FAILED": QT_TRANSLATE_NOOP("Errors", "The device could not erase its flash."),
    "PROGRAM_FAILED": QT_TRANSLATE_NOOP("Errors", "The device could not program its flash."),
    "VERIFY_FAILED": QT_TRANSLATE_NOOP("Errors", "The flash read back differs from what was sent."),
    "WRITE_PROTECTED": QT_TRANSLATE_NOOP("Errors", "The device's flash is write-protected."),
}


def error_text(err: BaseException) -> str:
    """One sentence for ``err`` in the window's language (the core's own English when it is not mapped)."""
    if isinstance(err, Cancelled):
        return _tr("Errors", QT_TRANSLATE_NOOP("Errors", "Cancelled."))
    if isinstance(err, DeviceError):
        from protocol.update.status import Status

        try:
            name = Status(err.status).name
        except ValueError:
            name = ""
        if name in _DEVICE:
            return _tr("Errors", _DEVICE[name])
    text = str(err)
    if isinstance(err, Stm32OtaError | ProtocolTimeoutError | OSError):
        shown = _render(_ERRORS, text)
        if shown is not None:
            return shown
        slug = reason_of(err) if isinstance(err, Stm32OtaError) else None
        if slug and slug != "invalid-image":
            return reason_text(slug, text)
    return text


def error_hint(hint: str | None) -> str | None:
    if hint is None:
        return None
    template = _HINTS.get(hint)
    return _tr("Errors", template) if template else hint


def message_text(text: str) -> str:
    """A sentence the app or the core wrote (an error message that lost its type), translated if known."""
    return _render(_ERRORS, text) or text


# -- the pre-flight checks' reasons (protocol.image.errors slugs) -------------------------------------------
_REASONS = {
    "bad-magic": QT_TRANSLATE_NOOP("Reasons", "the file is not an MCUboot image (no image header)"),
    "missing-tlv": QT_TRANSLATE_NOOP("Reasons", "the image is not signed, or a required part is missing"),
    "unknown-key": QT_TRANSLATE_NOOP("Reasons", "the image is signed by a key this device does not trust"),
    "bad-signature": QT_TRANSLATE_NOOP("Reasons", "the signature does not match: the file was changed after signing"),
    "digest-mismatch": QT_TRANSLATE_NOOP("Reasons", "the image digest does not match: the file is damaged or altered"),
    "wrong-key-type": QT_TRANSLATE_NOOP("Reasons", "the signature type is not one this device verifies"),
    "wrong-chip": QT_TRANSLATE_NOOP("Reasons", "the image is built for another chip"),
    "wrong-board": QT_TRANSLATE_NOOP("Reasons", "the image is built for another board"),
    "security-counter": QT_TRANSLATE_NOOP(
        "Reasons", "the image's security counter is below the device's: it would be refused"
    ),
    "too-large": QT_TRANSLATE_NOOP("Reasons", "the image does not fit the device's slot"),
    "truncated": QT_TRANSLATE_NOOP("Reasons", "the file is cut short"),
    "bad-tlv": QT_TRANSLATE_NOOP("Reasons", "the image's metadata (TLV area) is malformed"),
    "tlv-overrun": QT_TRANSLATE_NOOP("Reasons", "the image's metadata (TLV area) is malformed"),
    "unsupported": QT_TRANSLATE_NOOP("Reasons", "the image uses a feature this device does not support"),
    "non-bootable": QT_TRANSLATE_NOOP("Reasons", "the image is marked non-bootable"),
    "not-an-application": QT_TRANSLATE_NOOP("Reasons", "the file does not look like an STM32 application"),
    "rom-fixed": QT_TRANSLATE_NOOP("Reasons", "the image is built for another flash address"),
    "misplaced-trailer": QT_TRANSLATE_NOOP("Reasons", "the image is padded for another slot size"),
    "overlap": QT_TRANSLATE_NOOP("Reasons", "the file's sections overlap"),
    "sparse-input": QT_TRANSLATE_NOOP("Reasons", "the file's sections are too far apart for one image"),
}
_REASON_DETAILS = _table(
    "Reasons",
    [
        (
            r"downgrade: the image is version (?P<new>\S+), the device runs (?P<old>\S+)",
            QT_TRANSLATE_NOOP("Reasons", "this is a downgrade: the image is {new}, the device runs {old}"),
        ),
        (
            r"same-version: the device already runs version (?P<old>\S+)",
            QT_TRANSLATE_NOOP("Reasons", "the device already runs version {old}"),
        ),
        (
            r"(?P<name>.+) cannot be used: (?P<problem>.+)",
            QT_TRANSLATE_NOOP("Reasons", "{name} cannot be used: {problem}"),
        ),
    ],
)


def reason_text(slug: str | None, reason: str) -> str:
    """A pre-flight refusal (``slug``, the core's ``reason`` sentence) in the window's language."""
    detailed = _render(_REASON_DETAILS, reason)
    if detailed is not None:
        return detailed
    template = _REASONS.get(slug or "")
    if template is None:
        return reason
    shown = _tr("Reasons", template)
    return reason if shown == template else shown  # in English the core's own sentence says more


def verdict_text(verdict: Verdict) -> str:
    """Why Flash is enabled, or why not, in the window's language."""
    report = verdict.report
    if not verdict.ok:
        return reason_text(verdict.slug, verdict.reason)
    if report is None:
        return verdict.reason
    if report.kind == "application":
        return _tr("Reasons", QT_TRANSLATE_NOOP("Reasons", "a raw application for the IAP area ({size} bytes)")).format(
            size=len(report.data)
        )
    signature = (
        _tr("Reasons", QT_TRANSLATE_NOOP("Reasons", "signature checked"))
        if report.signature_checked
        else _tr("Reasons", QT_TRANSLATE_NOOP("Reasons", "the device checks the signature"))
    )
    if report.running_version:
        return _tr("Reasons", QT_TRANSLATE_NOOP("Reasons", "image {version} over {running} fits slot 1; {sig}")).format(
            version=report.version, running=report.running_version, sig=signature
        )
    return _tr("Reasons", QT_TRANSLATE_NOOP("Reasons", "image {version} fits slot 1; {sig}")).format(
        version=report.version, sig=signature
    )


_SIGN_AGAIN = QT_TRANSLATE_NOOP("Reasons", "sign the application again with a key the device trusts: {command}")


def verdict_hint(verdict: Verdict) -> str | None:
    """What to do about a refusal: the window's own controls where there is one, else the core's command."""
    hint = verdict.hint
    if verdict.slug == "downgrade":
        return _tr("Reasons", QT_TRANSLATE_NOOP("Reasons", "tick “Allow downgrade” to install it anyway"))
    if verdict.slug == "same-version":
        return _tr("Reasons", QT_TRANSLATE_NOOP("Reasons", "tick “Reinstall same version” to flash it again"))
    if hint is None:
        return None
    if _tr("Reasons", _SIGN_AGAIN) == _SIGN_AGAIN:  # English: the core's own hint says more
        return hint
    if "stm32ota inspect" in hint:
        command = hint[hint.index("stm32ota inspect") :]
        return _tr("Reasons", QT_TRANSLATE_NOOP("Reasons", "see what the file holds: {command}")).format(
            command=command
        )
    if "stm32ota sign" in hint:
        command = hint[hint.index("stm32ota sign") :]
        return _tr(
            "Reasons",
            QT_TRANSLATE_NOOP("Reasons", "sign the application again with a key the device trusts: {command}"),
        ).format(command=command)
    return hint


# -- the flow's step messages (protocol.flow) and the app's own ---------------------------------------------
_FLOW = _table(
    "Flow",
    [
        (r"reading the device's INFO", QT_TRANSLATE_NOOP("Flow", "reading the device information")),
        (r"device information read", QT_TRANSLATE_NOOP("Flow", "device information read")),
        (r"probing the device", QT_TRANSLATE_NOOP("Flow", "probing the device")),
        (r"stm32ota bootloader", QT_TRANSLATE_NOOP("Flow", "stm32ota bootloader")),
        (r"classic YMODEM device \(AN4657 IAP menu\)", QT_TRANSLATE_NOOP("Flow", "classic IAP device (YMODEM)")),
        (r"classic IAP device", QT_TRANSLATE_NOOP("Flow", "classic IAP device (YMODEM)")),
        (r"checking the image against the device", QT_TRANSLATE_NOOP("Flow", "checking the image against the device")),
        (
            r"image (?P<version>\S+)(?: over (?P<old>\S+))? fits slot \d+: (?P<rest>.*)",
            QT_TRANSLATE_NOOP("Flow", "image {version} fits the download slot"),
        ),
        (
            r"preparing the download slot \(the device erases it\)",
            QT_TRANSLATE_NOOP("Flow", "preparing the download slot (the device erases it)"),
        ),
        (r"erased (?P<n>\d+) bytes of the download slot", QT_TRANSLATE_NOOP("Flow", "erased {n} bytes")),
        (r"download slot ready", QT_TRANSLATE_NOOP("Flow", "download slot ready")),
        (
            r"sending (?P<n>\d+) bytes \((?P<how>[^)]*)\) at (?P<baud>\d+) baud",
            QT_TRANSLATE_NOOP("Flow", "sending {n} bytes at {baud} baud"),
        ),
        (r"sent (?P<n>\d+) bytes.*", QT_TRANSLATE_NOOP("Flow", "sent {n} bytes")),
        (r"the device checks the image", QT_TRANSLATE_NOOP("Flow", "the device checks the image")),
        (
            r"the device checked the image: .*",
            QT_TRANSLATE_NOOP("Flow", "the device checked the image: digest, signature, chip and security counter"),
        ),
        (r"marking the image for a test boot", QT_TRANSLATE_NOOP("Flow", "marking the image for a test boot")),
        (
            r"marking the image for a permanent boot",
            QT_TRANSLATE_NOOP("Flow", "marking the image for a permanent boot"),
        ),
        (r"marked for a test boot", QT_TRANSLATE_NOOP("Flow", "marked for a test boot")),
        (r"marked for a permanent boot", QT_TRANSLATE_NOOP("Flow", "marked for a permanent boot")),
        (
            r"restarting the device \(the bootloader swaps the slots\)",
            QT_TRANSLATE_NOOP("Flow", "restarting the device (the bootloader swaps the slots)"),
        ),
        (
            r"the device is restarting; waiting for it to answer",
            QT_TRANSLATE_NOOP("Flow", "the device is restarting; waiting for it to answer"),
        ),
        (r"the device is restarting", QT_TRANSLATE_NOOP("Flow", "the device is restarting")),
        (r"confirming the new image", QT_TRANSLATE_NOOP("Flow", "confirming the new image")),
        (r"new image confirmed", QT_TRANSLATE_NOOP("Flow", "new image confirmed")),
        (r"switching to (?P<baud>\d+) baud", QT_TRANSLATE_NOOP("Flow", "switching to {baud} baud")),
        (r"line rate now (?P<baud>\d+) baud", QT_TRANSLATE_NOOP("Flow", "line rate now {baud} baud")),
        (r"opening (?P<url>\S+) at (?P<baud>\d+) baud", QT_TRANSLATE_NOOP("Flow", "opening {url} at {baud} baud")),
        (r"starting the emulated STM32", QT_TRANSLATE_NOOP("Flow", "starting the emulated STM32")),
        (r"update complete", QT_TRANSLATE_NOOP("Flow", "update complete")),
        (
            r"choosing the IAP menu's 'Download image' and sending with YMODEM",
            QT_TRANSLATE_NOOP("Flow", "choosing “Download image” in the IAP menu and sending with YMODEM"),
        ),
        (
            r"the device keeps running its old image until it restarts",
            QT_TRANSLATE_NOOP("Flow", "the device keeps running its old image until it restarts"),
        ),
        (
            r"the device came back without the new image",
            QT_TRANSLATE_NOOP("Flow", "the device came back without the new image"),
        ),
        (
            r"restarting the device so that its bootloader brings back the previous image",
            QT_TRANSLATE_NOOP("Flow", "restarting the device so that its bootloader brings back the previous image"),
        ),
        (
            r"the new image reported an error during its test boot: (?P<error>.+)",
            QT_TRANSLATE_NOOP("Flow", "the new image reported an error during its test boot: {error}"),
        ),
        (
            r"image installed; left to do: (?P<left>.+)",
            QT_TRANSLATE_NOOP("Flow", "image installed; left to do: {left}"),
        ),
        (
            r"cancelled: the device keeps what it received; Flash resumes there",
            QT_TRANSLATE_NOOP("Flow", "cancelled: the device keeps what it received; Flash resumes there"),
        ),
        (r"the new image is marked to boot", QT_TRANSLATE_NOOP("Flow", "the new image is marked to boot")),
        (r"waiting for the next board", QT_TRANSLATE_NOOP("Flow", "waiting for the next board")),
        (r"runs (?P<version>\S+) \((?P<state>[^)]*)\).*", QT_TRANSLATE_NOOP("Flow", "runs {version} ({state})")),
    ],
)


def flow_message(text: str) -> str:
    """A step message of the flow (or of the app) in the window's language; unknown ones as written."""
    return _render(_FLOW, text) or message_text(text)


_GATEWAY_MESSAGES = _table(
    "Gateway",
    [
        (r"updated to (?P<version>\S+)", QT_TRANSLATE_NOOP("Gateway", "updated to {version}")),
        (r"cancelled", QT_TRANSLATE_NOOP("Gateway", "cancelled by the server")),
        (
            r"downloaded, waiting for the update to be allowed",
            QT_TRANSLATE_NOOP("Gateway", "downloaded, waiting for the update to be allowed"),
        ),
        (r"device gone: (?P<why>.+)", QT_TRANSLATE_NOOP("Gateway", "device gone: {why}")),
    ],
)


def gateway_message(text: str) -> str:
    """A gateway port's status message in the window's language."""
    return _render(_GATEWAY_MESSAGES, text) or flow_message(text)
