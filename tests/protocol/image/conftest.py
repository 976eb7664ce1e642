"""Fixtures for the image tests: the committed dev keys, demo images and a fresh throwaway key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from protocol.image import PrivateKey, generate_key, load_private_key

ROOT = Path(__file__).resolve().parents[3]
ASSETS = ROOT / "assets"
FIRMWARE = ASSETS / "firmware"
KEYS = ASSETS / "keys"
BAD = ASSETS / "bad"
DEV_ED25519 = KEYS / "dev-ed25519-DO-NOT-USE-IN-PRODUCTION.pem"
DEV_ECDSA = KEYS / "dev-ecdsa-p256-DO-NOT-USE-IN-PRODUCTION.pem"
# Same options as assets/firmware/Makefile.
DEMO_SIGN: dict[str, Any] = {"header_size": 0x200, "pad_header": True, "align": 8, "slot_size": 0x60000}


@pytest.fixture(scope="session")
def ed_key() -> PrivateKey:
    return load_private_key(DEV_ED25519.read_bytes())


@pytest.fixture(scope="session")
def ec_key() -> PrivateKey:
    return load_private_key(DEV_ECDSA.read_bytes())


@pytest.fixture(scope="session")
def other_key() -> PrivateKey:
    return generate_key("ed25519")


@pytest.fixture(scope="session")
def fw_100() -> bytes:
    return (FIRMWARE / "demo-1.0.0.bin").read_bytes()


@pytest.fixture(scope="session")
def fw_110() -> bytes:
    return (FIRMWARE / "demo-1.1.0.bin").read_bytes()
