"""The --faults SPEC grammar and the line corruption it drives."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.faults import FaultPlan, FaultSpecError, LineFaults, PowerCutTrigger, parse_faults
from protocol.errors import Stm32OtaError


def test_full_example_parses() -> None:
    plan = parse_faults(
        "flip=1e-4,drop=0.001,noise=5s:32,reset-after=10000,powercut-op=123,powercut-at=2.5,mute-after=4096",
        seed=7,
    )
    assert plan == FaultPlan(
        flip=1e-4,
        drop=0.001,
        noise_period=5.0,
        noise_count=32,
        reset_after=10000,
        powercut_op=123,
        powercut_at=2.5,
        mute_after=4096,
        seed=7,
    )
    assert plan.line_faults


@pytest.mark.parametrize("spec", [None, "", "   "])
def test_empty_spec_is_no_faults(spec: str | None) -> None:
    plan = parse_faults(spec, seed=3)
    assert plan == FaultPlan(seed=3)
    assert not plan.line_faults
    assert plan.resolved_powercut_at() is None


@pytest.mark.parametrize(
    ("spec", "field", "value"),
    [
        ("flip=0.1%", "flip", 0.001),
        ("drop=1", "drop", 1.0),
        ("noise=250ms:4", "noise_period", 0.25),
        ("noise=2:4", "noise_count", 4),
        ("powercut-at=0", "powercut_at", 0.0),
        ("powercut-at=1500ms", "powercut_at", 1.5),
        ("powercut-at=random:10s", "powercut_random_max", 10.0),
        ("mute-after=0", "mute_after", 0),
        (" FLIP = 0.5 , drop=0 ", "flip", 0.5),
    ],
)
def test_values_and_units(spec: str, field: str, value: object) -> None:
    assert getattr(parse_faults(spec), field) == pytest.approx(value)


@pytest.mark.parametrize(
    "spec",
    [
        "bogus=1",
        "flip",
        "flip=",
        "flip=abc",
        "flip=2",
        "flip=-0.1",
        "flip=nan",
        "drop=150%",
        "flip=0.1,flip=0.2",
        "flip=0.1,,drop=0.1",
        "flip=0.1,",
        "noise=5s",
        "noise=5s:0",
        "noise=0:3",
        "noise=xs:3",
        "reset-after=0",
        "reset-after=1.5",
        "powercut-op=-1",
        "powercut-at=-1",
        "powercut-at=random:0",
        "mute-after=-1",
    ],
)
def test_bad_specs_raise_typed_errors(spec: str) -> None:
    with pytest.raises(FaultSpecError) as info:
        parse_faults(spec)
    err = info.value
    assert isinstance(err, Stm32OtaError) and isinstance(err, ValueError)
    assert err.hint and "key=value" in err.hint
    assert str(err)


def test_error_names_the_item() -> None:
    with pytest.raises(FaultSpecError) as info:
        parse_faults("flip=1e-4,warp=9")
    assert info.value.item == "warp=9"
    assert "unknown fault" in str(info.value)


def test_to_spec_round_trips() -> None:
    spec = "flip=0.0001,drop=0.001,noise=5.0:32,reset-after=10,powercut-op=3,powercut-at=random:2.5,mute-after=9"
    plan = parse_faults(spec, seed=1)
    assert parse_faults(plan.to_spec(), seed=1) == plan


def test_random_power_cut_is_seeded() -> None:
    a = parse_faults("powercut-at=random:10", seed=1).resolved_powercut_at()
    b = parse_faults("powercut-at=random:10", seed=1).resolved_powercut_at()
    c = parse_faults("powercut-at=random:10", seed=2).resolved_powercut_at()
    assert a == b
    assert a != c
    assert a is not None and 0 < a <= 10


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_parses_or_raises_our_error(spec: str) -> None:
    try:
        plan = parse_faults(spec)
    except FaultSpecError:
        return
    assert isinstance(plan, FaultPlan)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(["flip=1e-3", "drop=0.01", "noise=1s:3", "reset-after=5", "powercut-op=2", "mute-after=7"]),
        unique=True,
    )
)
def test_valid_combinations_round_trip(items: list[str]) -> None:
    plan = parse_faults(",".join(items))
    assert parse_faults(plan.to_spec()) == plan


# -- line corruption ------------------------------------------------------------------------------------


def _chunked(data: bytes, rng: random.Random) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, 300)
        out.append(data[i : i + n])
        i += n
    return out


@pytest.mark.parametrize("spec", ["flip=1e-3", "drop=0.01", "flip=1e-3,drop=0.01"])
def test_corruption_is_reproducible_however_the_stream_is_chunked(spec: str) -> None:
    data = random.Random(0).randbytes(50_000)
    whole = LineFaults(parse_faults(spec, seed=5), "rx").corrupt(data)
    faults = LineFaults(parse_faults(spec, seed=5), "rx")
    bytewise = b"".join(faults.corrupt(data[i : i + 1]) for i in range(len(data)))
    faults = LineFaults(parse_faults(spec, seed=5), "rx")
    chunked = b"".join(faults.corrupt(c) for c in _chunked(data, random.Random(1)))
    assert whole == bytewise == chunked
    assert whole != data
    other = LineFaults(parse_faults(spec, seed=6), "rx").corrupt(data)
    assert other != whole


def test_flip_rate_is_about_right() -> None:
    data = bytes(100_000)  # 800 000 bits
    faults = LineFaults(parse_faults("flip=1e-3", seed=1), "tx")
    out = faults.corrupt(data)
    flipped_bits = sum(bin(b).count("1") for b in out)
    assert flipped_bits == faults.flipped
    assert 600 < flipped_bits < 1000  # expectation 800
    assert len(out) == len(data)


def test_drop_rate_is_about_right_and_keeps_order() -> None:
    data = bytes(range(256)) * 400  # 102 400 bytes
    faults = LineFaults(parse_faults("drop=0.01", seed=1), "tx")
    out = faults.corrupt(data)
    assert len(out) == len(data) - faults.dropped
    assert 800 < faults.dropped < 1250  # expectation 1024
    # what survives is a subsequence of what was sent
    it = iter(data)
    assert all(any(b == c for c in it) for b in out)


def test_extreme_rates() -> None:
    data = b"\x00\x0f\xf0\xff"
    assert LineFaults(parse_faults("flip=1"), "rx").corrupt(data) == bytes(b ^ 0xFF for b in data)
    assert LineFaults(parse_faults("drop=1"), "rx").corrupt(data) == b""
    assert LineFaults(parse_faults("flip=0"), "rx").corrupt(data) == data
    assert LineFaults(FaultPlan(), "rx").corrupt(data) == data


def test_directions_have_their_own_streams() -> None:
    data = bytes(10_000)
    plan = parse_faults("flip=1e-3", seed=3)
    assert LineFaults(plan, "rx").corrupt(data) != LineFaults(plan, "tx").corrupt(data)


def test_noise_bursts_follow_the_period() -> None:
    faults = LineFaults(parse_faults("noise=5s:32", seed=1), "rx")
    assert faults.noise(100.0) == b""  # arms the timer
    assert faults.noise(104.9) == b""
    burst = faults.noise(105.0)
    assert len(burst) == 32
    assert faults.noise(106.0) == b""
    assert len(faults.noise(110.0)) == 32
    assert faults.noise_bytes == 64
    assert LineFaults(FaultPlan(), "rx").noise(1e9) == b""


def test_timed_power_cut_fires_once() -> None:
    trigger = PowerCutTrigger(parse_faults("powercut-at=2"), start=10.0)
    assert not trigger.due_by_time(11.9)
    assert trigger.due_by_time(12.0)
    assert not trigger.due_by_time(13.0)
    assert trigger.fired == 1
    assert not PowerCutTrigger(FaultPlan(), start=0.0).due_by_time(1e9)
