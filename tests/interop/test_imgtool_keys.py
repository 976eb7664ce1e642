"""Interop with imgtool 2.5 for every key type x every digest imgtool allows x a set of options.

* Ed25519 signing is deterministic: our image is byte-identical to imgtool's (SHA-256, SHA-512, ``--pure``).
* RSA-PSS and ECDSA are randomised: imgtool verifies our image, we verify imgtool's.
* An image tampered in the header, the payload, a protected TLV, the digest or the signature is refused by
  both, and so is an image checked with another key of the same type.
* ``inspect --json`` agrees with ``imgtool dumpinfo -f json`` field for field on every image.
* Keys: imgtool reads the keys our ``keygen`` writes and we read imgtool's; ``getpub`` agrees.

imgtool runs in-process through its click command (the same code as the ``imgtool`` script, without paying
its start-up for each of the few hundred calls); one test runs the installed script to prove they agree.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from protocol.cli import main as stm32ota
from protocol.image import load_private_key, parse_image, verify_image
from protocol.image.mcuboot import TlvType
from tests.conftest import require_module, require_tool

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "assets" / "firmware" / "demo-1.0.0.bin"
BASE = ["-H", "0x200", "--pad-header", "-S", "0x60000", "-v", "1.2.3+4"]
KINDS = ["ed25519", "ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072"]

# (key type, --sha or --pure): every pair imgtool 2.5 accepts for a private key, "auto" included.
DIGESTS: list[tuple[str, list[str]]] = [
    ("ed25519", ["--sha", "auto"]),
    ("ed25519", ["--sha", "256"]),
    ("ed25519", ["--sha", "512"]),
    ("ed25519", ["--pure"]),
    ("ecdsa-p256", ["--sha", "auto"]),
    ("ecdsa-p256", ["--sha", "256"]),
    ("ecdsa-p384", ["--sha", "auto"]),
    ("ecdsa-p384", ["--sha", "384"]),
    ("rsa-2048", ["--sha", "auto"]),
    ("rsa-2048", ["--sha", "256"]),
    ("rsa-3072", ["--sha", "auto"]),
    ("rsa-3072", ["--sha", "256"]),
]
OPTIONS: dict[str, list[str]] = {
    "plain": [],
    "rich": [
        "--align",
        "8",
        "--confirm",
        "-s",
        "3",
        "--custom-tlv",
        "0xa0",
        "0x13040000",
        "--custom-tlv",
        "0xb1",
        "hi",
    ],
    "full-padsig": ["--public-key-format", "full", "--pad-sig", "--align", "4", "--pad", "-s", "auto"],
}
# Pairs imgtool refuses; we refuse them too.
REFUSED: list[tuple[str, list[str]]] = [
    ("ecdsa-p256", ["--sha", "384"]),
    ("ecdsa-p256", ["--sha", "512"]),
    ("ecdsa-p384", ["--sha", "256"]),
    ("rsa-2048", ["--sha", "512"]),
    ("rsa-3072", ["--sha", "384"]),
    ("ed25519", ["--sha", "384"]),
    ("ecdsa-p256", ["--pure"]),
    ("rsa-2048", ["--pure"]),
]


def _digest_id(item: tuple[str, list[str]]) -> str:
    return f"{item[0]}-{'-'.join(a.lstrip('-') for a in item[1])}"


class Imgtool:
    """imgtool's click command, run in-process."""

    def __init__(self) -> None:
        from click.testing import CliRunner
        from imgtool.main import imgtool

        self._runner = CliRunner()
        self._command = imgtool

    def run(self, *args: object, check: bool = True) -> tuple[int, str]:
        result = self._runner.invoke(self._command, [str(a) for a in args], catch_exceptions=True)
        if check:
            assert result.exit_code == 0, f"imgtool {args}: {result.output}{result.exception!r}"
        return result.exit_code, result.output

    def verifies(self, key: Path, image: Path) -> bool:
        code, output = self.run("verify", "-k", key, image, check=False)
        return code == 0 and "Image was correctly validated" in output


@pytest.fixture(scope="module")
def imgtool() -> Imgtool:
    require_tool("imgtool", "pip install imgtool")
    require_module("imgtool", "pip install imgtool")
    return Imgtool()


@pytest.fixture(scope="module")
def keys(imgtool: Imgtool, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One key per type, made by imgtool keygen (so we prove we read imgtool's keys)."""
    folder = tmp_path_factory.mktemp("keys")
    made = {}
    for kind in KINDS:
        path = folder / f"{kind}.pem"
        imgtool.run("keygen", "-k", path, "-t", kind)
        made[kind] = path
    return made


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A second key per type, made by our keygen (so imgtool reads our keys)."""
    folder = tmp_path_factory.mktemp("other-keys")
    made = {}
    for kind in KINDS:
        path = folder / f"{kind}.pem"
        assert stm32ota(["keygen", "-k", str(path), "-t", kind]) == 0
        made[kind] = path
    return made


def _pub(key: Path) -> Path:
    """The public half of ``key`` (verifying with it skips the slow RSA private-key load in every call)."""
    pub = key.with_suffix(".pub.pem")
    if not pub.exists():
        assert stm32ota(["getpub", "-k", str(key), "-e", "pem", "-o", str(pub)]) == 0
    return pub


def _ours(*args: object) -> int:
    return stm32ota([str(a) for a in args])


def _inspect(capsys: pytest.CaptureFixture[str], path: Path) -> dict[str, Any]:
    capsys.readouterr()
    assert _ours("inspect", "--json", path) == 0
    info: dict[str, Any] = json.loads(capsys.readouterr().out)
    return info


def _assert_dumpinfo_agrees(imgtool: Imgtool, capsys: pytest.CaptureFixture[str], path: Path) -> None:
    _code, output = imgtool.run("dumpinfo", "-f", "json", path)
    theirs = json.loads(output[output.index("{") :])
    ours = _inspect(capsys, path)
    assert set(theirs["header"]) == {
        "magic",
        "load_addr",
        "hdr_size",
        "protected_tlv_size",
        "img_size",
        "flags",
        "version",
    }
    for name, value in theirs["header"].items():
        assert ours["header"][name] == value, name
    area = theirs["tlv_area"]
    if area["tlv_hdr_prot"]:
        assert area["tlv_hdr_prot"]["tlv_tot"] == ours["header"]["protected_tlv_size"]
    assert area["tlv_hdr"]["tlv_tot"] == ours["sizes"]["tlvs"]
    for their_list, our_list in ((area["tlvs_prot"], ours["protected_tlvs"]), (area["tlvs"], ours["tlvs"])):
        assert len(their_list) == len(our_list)
        for their_tlv, our_tlv in zip(their_list, our_list, strict=True):
            for name in ("type", "len", "data"):
                assert our_tlv[name] == their_tlv[name], (name, their_tlv["type_name"])
            # imgtool names no vendor TLV (0xa0..0xfffe); we name our own hardware tag.
            if their_tlv["type_name"] != "UNKNOWN" or not 0xA0 <= their_tlv["type"] <= 0xFFFE:
                assert our_tlv["type_name"] == their_tlv["type_name"]
    digest = next(t for t in area["tlvs"] if t["type_name"] in ("SHA256", "SHA384", "SHA512"))
    assert ours["digest_algorithm"] == digest["type_name"].lower()
    if ours["encryption"] and ours["digest_ok"] is None:
        # the digest covers the plaintext: imgtool prints the stored one, we say we could not compute it
        assert digest["data"] == ours["stored_digest"] and ours["digest"] is None
        assert "encrypted" in ours["not_computed"]
    else:
        assert digest["data"] == ours["digest"] == ours["stored_digest"]
        assert ours["digest_ok"] is True
    for name, value in theirs.get("trailer", {}).items():
        if name in ("image_ok", "copy_done", "swap_info", "swap_size", "magic"):
            assert ours["trailer"][name] == value, name


@pytest.mark.parametrize("option_set", list(OPTIONS), ids=list(OPTIONS))
@pytest.mark.parametrize("digest", DIGESTS, ids=[_digest_id(d) for d in DIGESTS])
def test_cross_sign_and_verify(
    imgtool: Imgtool,
    keys: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    digest: tuple[str, list[str]],
    option_set: str,
) -> None:
    kind, sha = digest
    key = keys[kind]
    options = [*BASE, *sha, *OPTIONS[option_set]]
    theirs, ours = tmp_path / "theirs.bin", tmp_path / "ours.bin"
    imgtool.run("sign", "-k", key, *options, DEMO, theirs)
    assert _ours("sign", "-k", key, *options, DEMO, ours) == 0
    assert len(ours.read_bytes()) == len(theirs.read_bytes()) or kind.startswith("ecdsa")  # DER length varies
    if kind == "ed25519":
        assert ours.read_bytes() == theirs.read_bytes()
    assert imgtool.verifies(_pub(key), ours)
    assert _ours("verify", "-k", _pub(key), theirs) == 0
    verified = verify_image(theirs.read_bytes(), keys=[load_private_key(key.read_bytes())])
    assert verified.key_type == kind
    assert str(verified.version) == "1.2.3+4"
    for path in (theirs, ours):
        _assert_dumpinfo_agrees(imgtool, capsys, path)


def _tamper_offsets(data: bytes) -> dict[str, int]:
    image = parse_image(data)
    h = image.header
    tlv_start = h.header_size + h.image_size + h.protected_tlv_size
    offsets = {
        "header-version": 20,
        "payload": h.header_size + h.image_size // 2,
        "digest": tlv_start + 4 + 4,  # first TLV (the digest) after the TLV info header and record header
    }
    if h.protected_tlv_size:
        offsets["protected-tlv"] = h.header_size + h.image_size + h.protected_tlv_size - 1
    sig = next(
        t
        for t in image.tlvs
        if t.type in (TlvType.ED25519, TlvType.ECDSA_SIG, TlvType.RSA2048_PSS, TlvType.RSA3072_PSS)
    )
    offsets["signature"] = image.end - len(sig.value) // 2
    return offsets


@pytest.mark.parametrize("digest", DIGESTS, ids=[_digest_id(d) for d in DIGESTS])
def test_tampered_anywhere_refused_by_both(
    imgtool: Imgtool,
    keys: dict[str, Path],
    other_keys: dict[str, Path],
    tmp_path: Path,
    digest: tuple[str, list[str]],
) -> None:
    kind, sha = digest
    key, pub, other = keys[kind], _pub(keys[kind]), _pub(other_keys[kind])
    options = [*BASE, *sha, "-s", "5", "--custom-tlv", "0xa0", "0x13040000"]
    for maker in ("imgtool", "ours"):
        good = tmp_path / f"{maker}.bin"
        if maker == "imgtool":
            imgtool.run("sign", "-k", key, *options, DEMO, good)
        else:
            assert _ours("sign", "-k", key, *options, DEMO, good) == 0
        data = good.read_bytes()
        assert imgtool.verifies(pub, good) and _ours("verify", "-k", pub, good) == 0
        # Another key of the same type: both refuse.
        assert not imgtool.verifies(other, good)
        assert _ours("verify", "-k", other, good) == 1
        offsets = _tamper_offsets(data)
        assert set(offsets) >= {"header-version", "payload", "protected-tlv", "digest", "signature"}
        for where, offset in offsets.items():
            bad = bytearray(data)
            bad[offset] ^= 0x01
            path = tmp_path / f"{maker}-{where}.bin"
            path.write_bytes(bytes(bad))
            assert not imgtool.verifies(pub, path), f"imgtool accepted {maker}'s image tampered in the {where}"
            assert _ours("verify", "-k", pub, path) == 1, f"we accepted {maker}'s image tampered in the {where}"


@pytest.mark.parametrize("refused", REFUSED, ids=[_digest_id(r) for r in REFUSED])
def test_digests_imgtool_refuses_we_refuse(
    imgtool: Imgtool, keys: dict[str, Path], tmp_path: Path, refused: tuple[str, list[str]]
) -> None:
    kind, sha = refused
    code, _output = imgtool.run("sign", "-k", keys[kind], *BASE, *sha, DEMO, tmp_path / "theirs.bin", check=False)
    assert code != 0
    assert _ours("sign", "-k", keys[kind], *BASE, *sha, DEMO, tmp_path / "ours.bin") == 1
    assert not (tmp_path / "ours.bin").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_keys_and_getpub_interoperate(
    imgtool: Imgtool, keys: dict[str, Path], other_keys: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    for key in (keys[kind], other_keys[kind]):  # imgtool's key, then ours
        for encoding in ("raw", "pem"):
            theirs, ours = tmp_path / f"theirs.{encoding}", tmp_path / f"ours.{encoding}"
            imgtool.run("getpub", "-k", key, "-e", encoding, "-o", theirs)
            assert _ours("getpub", "-k", key, "-e", encoding, "-o", ours) == 0
            assert ours.read_bytes() == theirs.read_bytes(), encoding
        # getpub's raw DER reads back as a key both ways (PKCS#1 for RSA).
        assert _ours("verify", "-k", tmp_path / "theirs.raw", DEMO) == 1  # a key that loads; DEMO is no image


def test_installed_script_agrees(keys: dict[str, Path], tmp_path: Path) -> None:
    """The same checks through the installed ``imgtool`` script, once per algorithm family."""
    tool = require_tool("imgtool", "pip install imgtool")
    for kind in ("rsa-3072", "ecdsa-p384"):
        ours = tmp_path / f"{kind}.bin"
        assert _ours("sign", "-k", keys[kind], *BASE, DEMO, ours) == 0
        result = subprocess.run(
            [tool, "verify", "-k", str(keys[kind]), str(ours)], capture_output=True, text=True, check=False, timeout=120
        )
        assert result.returncode == 0 and "correctly validated" in result.stdout, result.stdout + result.stderr
