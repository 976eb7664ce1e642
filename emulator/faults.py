"""Faults on demand: the ``--faults SPEC`` grammar, line corruption, and power-cut triggers.

Grammar (comma-separated ``key=value`` items, each key at most once, whitespace around items ignored)::

    SPEC      := ITEM ("," ITEM)*
    flip=R            bit error rate: each bit on the line flips with probability R (0 <= R <= 1)
    drop=R            each byte on the line is lost with probability R
    noise=T:N         every T seconds a burst of N random bytes hits the line
    reset-after=N     the device resets once, after it has received N bytes (watchdog, brown-out)
    powercut-op=N     power is cut during the N-th flash operation (1 = the first erase/program)
    powercut-at=T     power is cut T seconds after start (if a flash operation is running, it ends there)
    powercut-at=random:T   ... at a seeded random time in (0, T]
    mute-after=N      the device stops answering for good after it has sent N bytes

Times take an optional unit: ``2.5``, ``2.5s``, ``250ms``.  Rates accept ``1e-4``, ``0.001`` or ``0.1%``.
``flip``, ``drop`` and ``noise`` act on both directions, each with its own random stream, so a run is
reproducible with the same ``--seed`` regardless of how the bytes were chunked.

Example: ``flip=1e-4,drop=0.001,noise=5s:32,reset-after=10000,powercut-op=123,mute-after=4096``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, fields

from protocol.errors import Stm32OtaError

__all__ = [
    "FaultPlan",
    "FaultSpecError",
    "LineFaults",
    "PowerCutTrigger",
    "parse_faults",
]

_KEYS = ("flip", "drop", "noise", "reset-after", "powercut-op", "powercut-at", "mute-after")


class FaultSpecError(Stm32OtaError, ValueError):
    """A ``--faults`` SPEC that does not parse.  ``item`` is the offending item (or ``""``)."""

    def __init__(self, message: str, *, item: str = "") -> None:
        super().__init__(
            message,
            hint="SPEC is comma-separated key=value items, e.g. flip=1e-4,drop=0.001,noise=5s:32,"
            "reset-after=10000,powercut-op=123,powercut-at=2.5,mute-after=4096",
        )
        self.item = item


@dataclass(frozen=True, kw_only=True)
class FaultPlan:
    """What to break, parsed from a SPEC.  The default plan breaks nothing."""

    flip: float = 0.0
    drop: float = 0.0
    noise_period: float | None = None
    noise_count: int = 0
    reset_after: int | None = None
    powercut_op: int | None = None
    powercut_at: float | None = None
    powercut_random_max: float | None = None
    mute_after: int | None = None
    seed: int = 0

    @property
    def line_faults(self) -> bool:
        """True if anything corrupts bytes on the wire."""
        return self.flip > 0 or self.drop > 0 or self.noise_period is not None

    def resolved_powercut_at(self) -> float | None:
        """The power-cut time in seconds from start (a random one drawn from ``seed``), or ``None``."""
        if self.powercut_at is not None:
            return self.powercut_at
        if self.powercut_random_max is not None:
            rng = random.Random(f"{self.seed}:powercut")
            return self.powercut_random_max * (1.0 - rng.random())  # in (0, max]
        return None

    def to_spec(self) -> str:
        """The canonical SPEC string (``parse_faults(plan.to_spec())`` gives an equal plan, seed aside)."""
        items: list[str] = []
        if self.flip:
            items.append(f"flip={self.flip!r}")
        if self.drop:
            items.append(f"drop={self.drop!r}")
        if self.noise_period is not None:
            items.append(f"noise={self.noise_period!r}:{self.noise_count}")
        if self.reset_after is not None:
            items.append(f"reset-after={self.reset_after}")
        if self.powercut_op is not None:
            items.append(f"powercut-op={self.powercut_op}")
        if self.powercut_at is not None:
            items.append(f"powercut-at={self.powercut_at!r}")
        if self.powercut_random_max is not None:
            items.append(f"powercut-at=random:{self.powercut_random_max!r}")
        if self.mute_after is not None:
            items.append(f"mute-after={self.mute_after}")
        return ",".join(items)


def _rate(item: str, text: str) -> float:
    scale = 1.0
    if text.endswith("%"):
        text, scale = text[:-1], 0.01
    try:
        value = float(text) * scale
    except ValueError:
        raise FaultSpecError(f"{item!r}: {text!r} is not a number", item=item) from None
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise FaultSpecError(f"{item!r}: a rate must be between 0 and 1", item=item)
    return value


def _seconds(item: str, text: str, *, allow_zero: bool = False) -> float:
    scale = 1.0
    if text.endswith("ms"):
        text, scale = text[:-2], 0.001
    elif text.endswith("s"):
        text = text[:-1]
    try:
        value = float(text) * scale
    except ValueError:
        raise FaultSpecError(f"{item!r}: {text!r} is not a time (e.g. 2.5, 2.5s, 250ms)", item=item) from None
    if math.isnan(value) or math.isinf(value) or value < 0 or (value == 0 and not allow_zero):
        raise FaultSpecError(f"{item!r}: the time must be a positive number of seconds", item=item)
    return value


def _count(item: str, text: str, *, minimum: int = 1) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise FaultSpecError(f"{item!r}: {text!r} is not a whole number", item=item) from None
    if value < minimum:
        raise FaultSpecError(f"{item!r}: must be at least {minimum}", item=item)
    return value


def parse_faults(spec: str | None, *, seed: int = 0) -> FaultPlan:
    """Parse a ``--faults`` SPEC (``None`` or ``""`` = no faults).  Raises :class:`FaultSpecError`."""
    values: dict[str, object] = {"seed": seed}
    if spec is None or not spec.strip():
        return FaultPlan(seed=seed)
    seen: set[str] = set()
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            raise FaultSpecError("empty item in the fault SPEC (two commas, or a trailing comma?)", item=item)
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not value:
            raise FaultSpecError(f"{item!r}: expected key=value", item=item)
        if key not in _KEYS:
            raise FaultSpecError(f"{item!r}: unknown fault {key!r} (known: {', '.join(_KEYS)})", item=item)
        if key in seen:
            raise FaultSpecError(f"{item!r}: {key} given twice", item=item)
        seen.add(key)
        if key == "flip":
            values["flip"] = _rate(item, value)
        elif key == "drop":
            values["drop"] = _rate(item, value)
        elif key == "noise":
            period, colon, count = value.partition(":")
            if not colon:
                raise FaultSpecError(f"{item!r}: noise needs PERIOD:COUNT, e.g. noise=5s:32", item=item)
            values["noise_period"] = _seconds(item, period.strip())
            values["noise_count"] = _count(item, count.strip())
        elif key == "reset-after":
            values["reset_after"] = _count(item, value)
        elif key == "powercut-op":
            values["powercut_op"] = _count(item, value)
        elif key == "powercut-at":
            if value.lower().startswith("random:"):
                values["powercut_random_max"] = _seconds(item, value[len("random:") :].strip())
            else:
                values["powercut_at"] = _seconds(item, value, allow_zero=True)
        elif key == "mute-after":
            values["mute_after"] = _count(item, value, minimum=0)
    names = {f.name for f in fields(FaultPlan)}
    assert set(values) <= names
    return FaultPlan(**values)  # type: ignore[arg-type]


class LineFaults:
    """Corrupts one direction of the line as ``plan`` says.  Deterministic for a given seed and byte stream,
    however the stream is chunked."""

    def __init__(self, plan: FaultPlan, direction: str) -> None:
        self.plan = plan
        self._rng = random.Random(f"{plan.seed}:{direction}")
        self._flip_rng = random.Random(f"{plan.seed}:{direction}:flip")
        self._drop_rng = random.Random(f"{plan.seed}:{direction}:drop")
        self._bits_to_flip = self._gap(plan.flip, self._flip_rng)
        self._bytes_to_drop = self._gap(plan.drop, self._drop_rng)
        self._next_noise: float | None = None
        self.flipped = 0
        self.dropped = 0
        self.noise_bytes = 0

    @staticmethod
    def _gap(p: float, rng: random.Random) -> int | None:
        """Trials until the next success of a Bernoulli(p) stream (geometric), ``None`` if p == 0."""
        if p <= 0:
            return None
        if p >= 1:
            return 0
        u = 1.0 - rng.random()  # (0, 1]
        return int(math.log(u) / math.log1p(-p))

    def corrupt(self, data: bytes) -> bytes:
        """``data`` after bit flips and drops."""
        if self._bits_to_flip is None and self._bytes_to_drop is None:
            return data
        out = bytearray(data)
        if self._bits_to_flip is not None:
            nbits = len(out) * 8
            pos = 0
            while pos + self._bits_to_flip < nbits:
                pos += self._bits_to_flip
                out[pos // 8] ^= 1 << (pos % 8)
                self.flipped += 1
                pos += 1
                self._bits_to_flip = self._gap(self.plan.flip, self._flip_rng) or 0
            self._bits_to_flip -= nbits - pos
        if self._bytes_to_drop is not None:
            keep = bytearray()
            pos = 0
            n = len(out)
            while pos + self._bytes_to_drop < n:
                cut = pos + self._bytes_to_drop
                keep += out[pos:cut]
                self.dropped += 1
                pos = cut + 1
                self._bytes_to_drop = self._gap(self.plan.drop, self._drop_rng) or 0
            keep += out[pos:]
            self._bytes_to_drop -= n - pos
            out = keep
        return bytes(out)

    def noise(self, now: float) -> bytes:
        """A noise burst if one is due at ``now`` (monotonic seconds), else ``b""``."""
        period = self.plan.noise_period
        if period is None:
            return b""
        if self._next_noise is None:
            self._next_noise = now + period
            return b""
        if now < self._next_noise:
            return b""
        self._next_noise = now + period
        self.noise_bytes += self.plan.noise_count
        return self._rng.randbytes(self.plan.noise_count)

    def garbage(self, n: int) -> bytes:
        """What ``n`` bytes sent at the wrong baud rate look like at the far end: noise."""
        return self._rng.randbytes(n)


class PowerCutTrigger:
    """Decides when power is cut: hand :meth:`on_flash_op` to :class:`~emulator.flash.Flash` as ``on_op``.

    Each trigger fires once per emulator run (a reboot does not re-arm it)."""

    def __init__(self, plan: FaultPlan, *, start: float) -> None:
        self.plan = plan
        self._op_fired = False
        at = plan.resolved_powercut_at()
        self._deadline = None if at is None else start + at
        self.fired = 0

    @property
    def deadline(self) -> float | None:
        """The pending timed cut (monotonic seconds), ``None`` if none is armed."""
        return self._deadline

    def due_by_time(self, now: float) -> bool:
        """True (once) when the timed power cut is due."""
        if self._deadline is not None and now >= self._deadline:
            self._deadline = None
            self.fired += 1
            return True
        return False

    def on_flash_op(self, op: int) -> None:
        """Called by the flash before operation number ``op`` (1-based); raises ``PowerCut`` when due."""
        import time

        from .flash import PowerCut

        if not self._op_fired and self.plan.powercut_op is not None and op >= self.plan.powercut_op:
            self._op_fired = True
            self.fired += 1
            raise PowerCut(f"power cut at flash operation {op}")
        if self.due_by_time(time.monotonic()):
            raise PowerCut(f"timed power cut during flash operation {op}")
