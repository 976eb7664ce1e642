"""Building an emulated chip from command-line style options: the personality factory and ``build_device``.

Kept apart from the runtime (:mod:`emulator.device`), which runs whatever personality it is given and knows
none of them; this module knows them all (:mod:`emulator.ota`, :mod:`emulator.iap`) and the transports
(:mod:`emulator.endpoints`), so neither side needs a deferred import to dodge a cycle.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from protocol.errors import ImageError, PortError, Stm32OtaError
from protocol.image.encryption import EncryptionPrivateKeyTypes, load_encryption_key

from .chips import CHIPS
from .device import Device, Personality, PersonalityFactory
from .endpoints import PtyEndpoint, SocketEndpoint
from .faults import FaultPlan
from .iap import IapPersonality, parse_quirks
from .line import DEFAULT_BAUD, DEFAULT_RX_BUFFER, Line
from .ota import OtaPersonality

__all__ = ["MODES", "build_device", "check_enc_key", "default_trusted_keys", "personality_factory_for"]

MODES = ("ota", "iap")
_REPO_KEYS = Path(__file__).resolve().parent.parent / "assets" / "keys"
_PACKAGED_KEYS = Path(__file__).resolve().parent / "assets"


def default_trusted_keys() -> list[Path]:
    """The dev public key(s): ``assets/keys/*.pub.pem`` in a checkout, else any packaged with the emulator."""
    for folder in (_REPO_KEYS, _PACKAGED_KEYS):
        if folder.is_dir():
            keys = sorted(p for p in folder.glob("*.pem") if "pub" in p.name.lower())
            if keys:
                return keys
    return []


def check_enc_key(path: Path) -> None:
    """Refuse, with a sentence, an ``--enc-key`` that is missing or not a private image-encryption key."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise Stm32OtaError(
            f"encryption key not found: {path} ({err.strerror})",
            hint="pass --enc-key with the private key images are encrypted for (stm32ota keygen -t x25519)",
        ) from err
    try:
        key = load_encryption_key(data)
    except ImageError as err:
        raise Stm32OtaError(f"{path}: {err}", hint=err.hint) from err
    if not isinstance(key, EncryptionPrivateKeyTypes):
        raise Stm32OtaError(
            f"{path} is a public key: the device decrypts with the private key",
            hint="pass the private key (the one `stm32ota getpriv` prints as a C array)",
        )


def personality_factory_for(mode: str, iap_quirks: str | None = None, auto_confirm: bool = True) -> PersonalityFactory:
    """A factory of fresh personalities for ``mode`` (``ota`` or ``iap``): the runtime calls it at every reset."""
    if mode == "iap":
        quirks = parse_quirks(iap_quirks if iap_quirks is not None else "all")

        def iap() -> Personality:
            return IapPersonality(quirks=quirks)

        return iap
    if mode == "ota":

        def ota() -> Personality:
            return OtaPersonality(auto_confirm=auto_confirm)

        return ota
    raise Stm32OtaError(f"unknown emulator mode {mode!r}", hint="use --mode ota or --mode iap")


def build_device(
    *,
    mode: str = "ota",
    chip: str = "stm32f407vg",
    baud: int = 115200,
    pacing: bool = True,
    latency_s: float = 0.0,
    rx_buffer: int | None = None,
    state_dir: Path | str | None = None,
    trusted_keys: Sequence[Path | str] | None = None,
    faults: FaultPlan | None = None,
    time_scale: float = 1.0,
    socket_port: int | None = None,
    iap_quirks: str | None = None,
    auto_confirm: bool = True,
    personality_factory: PersonalityFactory | None = None,
    durable: bool = True,
    enc_key: Path | str | None = None,
) -> Device:
    """A ready-to-start :class:`Device` on a new pty (or ``socket://127.0.0.1:socket_port``).

    ``baud=0`` means an unthrottled line that ignores the host's rate.  ``state_dir=None`` makes a new temp
    folder (the device still persists there, so a power cut reboots from it).  ``trusted_keys=None`` trusts
    the dev key.  ``auto_confirm=False`` makes the OTA mode's application leave a test image unconfirmed
    (so the next reset reverts it).  ``durable=False`` skips the ``fsync`` of each flash commit (the OS still
    has every write at once, so a killed emulator loses nothing; a crash of the host machine might).  ``enc_key``
    is the image-decryption private key (X25519, P-256 or RSA-2048 PEM/DER) the OTA bootloader embeds; it is
    kept in the state folder, so a later run of the same folder without ``enc_key`` still decrypts."""
    if chip not in CHIPS:
        raise Stm32OtaError(f"unknown chip {chip!r}", hint=f"choose one of: {', '.join(sorted(CHIPS))}")
    if baud < 0:
        raise Stm32OtaError(f"invalid baud rate {baud}", hint="use a positive rate, or 0 for an unthrottled line")
    if time_scale < 0:
        raise Stm32OtaError(f"invalid time scale {time_scale}", hint="0 = instant flash, 1 = datasheet timing")
    if state_dir is None:
        state_dir = tempfile.mkdtemp(prefix="stm32ota-emu-")
    keys = default_trusted_keys() if trusted_keys is None else [Path(k) for k in trusted_keys]
    for key in keys:
        if not key.is_file():
            raise Stm32OtaError(f"trusted key not found: {key}", hint="pass --trust with a public key .pem")
    if enc_key is not None:
        check_enc_key(Path(enc_key))
    factory = (
        personality_factory
        if personality_factory is not None
        else personality_factory_for(mode, iap_quirks, auto_confirm)
    )
    if rx_buffer is not None and rx_buffer <= 0:
        raise Stm32OtaError(f"invalid RX buffer size {rx_buffer}", hint="give a positive number of bytes")
    if latency_s < 0:
        raise Stm32OtaError(f"invalid latency {latency_s * 1000:g} ms", hint="use 0 or more milliseconds")
    try:
        endpoint = SocketEndpoint(socket_port) if socket_port is not None else PtyEndpoint()
    except (OSError, OverflowError) as err:
        where = f"socket 127.0.0.1:{socket_port}" if socket_port is not None else "a pty"
        raise PortError(
            f"cannot open {where}: {err}",
            hint="pick another --socket port (0 = any free one)" if socket_port is not None else None,
        ) from err
    try:
        line = Line(
            endpoint,
            baud=baud or DEFAULT_BAUD,
            pacing=pacing and baud > 0,
            check_baud=baud > 0,
            latency_s=latency_s,
            rx_buffer=rx_buffer or DEFAULT_RX_BUFFER,
            faults=faults,
        )
        return Device(
            factory,
            line,
            chip=chip,
            state_dir=state_dir,
            faults=faults,
            time_scale=time_scale,
            trusted_keys=keys,
            name=mode,
            durable=durable,
            enc_key=enc_key,
        )
    except BaseException:
        endpoint.close()
        raise
