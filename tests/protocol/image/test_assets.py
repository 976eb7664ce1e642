"""The committed demo images, keys and bad images: present, consistent with their source, rejected as documented."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zlib
from pathlib import Path
from types import ModuleType

import pytest

from protocol.image import SlotGeometry, check_slot_rules, load_public_key, parse_image, reason_of, verify_image
from protocol.image.errors import ImageError
from tests.conftest import require_tool

from .conftest import BAD, FIRMWARE, KEYS


def _make_bad() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_bad", BAD / "make_bad.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


MAKE_BAD = _make_bad()
TRUSTED = [load_public_key(p.read_bytes()) for p in sorted(KEYS.glob("*pub*.pem"))]


@pytest.mark.parametrize(
    ("name", "version", "counter", "key_type"),
    [
        ("demo-1.0.0", "1.0.0+0", 1, "ed25519"),
        ("demo-1.0.0-ecdsa", "1.0.0+0", 1, "ecdsa-p256"),
        ("demo-1.1.0", "1.1.0+0", 2, "ed25519"),
        ("demo-big-1.2.0", "1.2.0+0", 2, "ed25519"),
    ],
)
def test_demo_images_verify(name: str, version: str, counter: int, key_type: str) -> None:
    verified = verify_image((FIRMWARE / f"{name}.signed.bin").read_bytes(), keys=TRUSTED, **MAKE_BAD.DEVICE)
    assert str(verified.version) == version
    assert verified.security_counter == counter and verified.key_type == key_type
    assert verified.image.header.header_size == 0x200


def test_big_demo_is_realistic() -> None:
    payload = parse_image((FIRMWARE / "demo-big-1.2.0.signed.bin").read_bytes()).payload
    assert 240 * 1024 <= len(payload) <= 256 * 1024
    ratio = len(payload) / len(zlib.compress(payload, 6))
    assert 1.5 <= ratio <= 3.0, ratio
    assert b"assets self-test done" in payload


@pytest.mark.parametrize("name", sorted(MAKE_BAD.BAD_IMAGES))
def test_bad_image_rejected_with_documented_reason(name: str) -> None:
    expected = MAKE_BAD.BAD_IMAGES[name].reason
    with pytest.raises(ImageError) as info:
        verify_image((BAD / name).read_bytes(), keys=TRUSTED, **MAKE_BAD.DEVICE)
    assert reason_of(info.value) == expected


def test_bad_images_rebuild_identically() -> None:
    for name, data in MAKE_BAD.build().items():
        assert (BAD / name).read_bytes() == data, name
    for name, data in MAKE_BAD.build_slot_rules().items():
        assert (MAKE_BAD.SLOT_RULES_DIR / name).read_bytes() == data, name


F407_SLOT = SlotGeometry(address=0x0808_0000, size=0x60000, trailer_reserve=1584, run_address=0x0802_0000)


@pytest.mark.parametrize("name", sorted(MAKE_BAD.SLOT_RULE_IMAGES))
def test_slot_rule_images_are_genuine_but_wrong_for_the_device(name: str) -> None:
    """They pass every signature check; the slot rules (or, for the version, the host) refuse them."""
    data = (MAKE_BAD.SLOT_RULES_DIR / name).read_bytes()
    verified = verify_image(data, keys=TRUSTED, **MAKE_BAD.DEVICE)
    expected = MAKE_BAD.SLOT_RULE_IMAGES[name].reason
    if expected == "downgrade":
        assert verified.version < parse_image((FIRMWARE / "demo-1.0.0.signed.bin").read_bytes()).version
        return
    with pytest.raises(ImageError) as info:
        check_slot_rules(verified.image, F407_SLOT, data_size=len(data))
    assert reason_of(info.value) == expected


def test_the_good_padded_image_passes_the_slot_rules() -> None:
    data = (MAKE_BAD.SLOT_RULES_DIR / MAKE_BAD.GOOD_PADDED).read_bytes()
    verified = verify_image(data, keys=TRUSTED, **MAKE_BAD.DEVICE)
    assert len(data) == F407_SLOT.size and verified.image.trailer is not None
    check_slot_rules(verified.image, F407_SLOT, data_size=len(data))


def test_bad_readme_documents_every_image() -> None:
    readme = (BAD / "README.md").read_text()
    for name, bad in {**MAKE_BAD.BAD_IMAGES, **MAKE_BAD.SLOT_RULE_IMAGES}.items():
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}`"))
        assert f"`{bad.reason}`" in row
    assert "security counter 0" in readme


def test_untrusted_key_is_not_trusted_by_default() -> None:
    assert not any("untrusted" in p.name for p in KEYS.iterdir())


def test_generated_assets_source_is_current(tmp_path: Path) -> None:
    out = tmp_path / "assets_big.c"
    subprocess.run([sys.executable, str(FIRMWARE / "tools" / "gen_assets.py"), str(out)], check=True)
    assert out.read_bytes() == (FIRMWARE / "src" / "assets_big.c").read_bytes()


def test_firmware_builds_from_source() -> None:
    """`make check` rebuilds the three demo ELFs with gcc-arm-none-eabi and compares with the committed bins.

    The built files are committed so that users need no cross-compiler; CI installs one (.ci/run) and so
    proves the committed images come from the committed source.
    """
    require_tool("arm-none-eabi-gcc", "apt-get install gcc-arm-none-eabi")
    require_tool("make", "apt-get install make")
    result = subprocess.run(
        ["make", "-C", str(FIRMWARE), "check", f"PYTHON={sys.executable}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "match their source" in result.stdout
