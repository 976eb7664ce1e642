"""Interop with MCUboot's ``imgtool`` (PyPI), run as a subprocess.

* Ed25519 is deterministic: our ``sign`` output is byte-identical to ``imgtool sign`` across a matrix of options.
* ``imgtool verify`` accepts every image we sign (Ed25519 and ECDSA P-256), we accept every image imgtool
  signs, and both reject the tampered ones.
* ``imgtool dumpinfo -f json`` and our ``inspect --json`` agree on header, version, sizes, digest and TLVs.
* HEX, S-record and ELF inputs sign to the same image as the .bin, with imgtool too (it reads .hex).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from protocol.cli import main as stm32ota
from protocol.image import load_private_key, parse_image, verify_image
from tests.conftest import require_tool

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "assets" / "firmware"
BAD = ROOT / "assets" / "bad"
ED_KEY = ROOT / "assets" / "keys" / "dev-ed25519-DO-NOT-USE-IN-PRODUCTION.pem"
EC_KEY = ROOT / "assets" / "keys" / "dev-ecdsa-p256-DO-NOT-USE-IN-PRODUCTION.pem"
DEMO = FIRMWARE / "demo-1.0.0.bin"
BIG = FIRMWARE / "demo-big-1.2.0.bin"
HDR = ["-H", "0x200", "--pad-header"]

# (id, options, input, zero bytes to prepend to the input: room for the header when there is no --pad-header)
MATRIX: list[tuple[str, list[str], Path, int]] = [
    ("minimal", ["-H", "0x20", "--pad-header", "-S", "0x60000", "-v", "0"], DEMO, 0),
    (
        "demo",
        [*HDR, "--align", "8", "-S", "0x60000", "-v", "1.0.0", "-s", "1", "--custom-tlv", "0xa0", "0x13040000"],
        DEMO,
        0,
    ),
    ("zero-header", ["-H", "0x400", "-S", "0x60000", "-v", "1.2.3+4"], DEMO, 0x400),
    ("pad-align4", [*HDR, "--align", "4", "-S", "0x20000", "--pad", "-v", "2.0"], DEMO, 0),
    ("confirm", [*HDR, "--align", "8", "-S", "0x20000", "--confirm", "-v", "1.1.1", "-s", "7"], DEMO, 0),
    ("test-align16", [*HDR, "--align", "16", "-S", "0x20000", "--test", "-v", "1"], DEMO, 0),
    ("confirm-align32", [*HDR, "--align", "32", "-S", "0x40000", "--confirm", "-v", "1"], DEMO, 0),
    ("max-align32", [*HDR, "--align", "8", "--max-align", "32", "-S", "0x20000", "--confirm", "-v", "1"], DEMO, 0),
    ("counter-auto", [*HDR, "-S", "0x60000", "-s", "auto", "-v", "3.4.5+6"], DEMO, 0),
    (
        "two-custom",
        [*HDR, "-S", "0x60000", "-v", "1", "--custom-tlv", "0xa0", "0x10040300", "--custom-tlv", "0xb5", "hello world"],
        DEMO,
        0,
    ),
    ("full-key", [*HDR, "-S", "0x60000", "-v", "1", "--public-key-format", "full"], DEMO, 0),
    ("overwrite-only", [*HDR, "--align", "8", "-S", "0x20000", "--overwrite-only", "--confirm", "-v", "1"], DEMO, 0),
    ("max-sectors", [*HDR, "--align", "2", "-S", "0x20000", "-M", "64", "--pad", "-v", "1"], DEMO, 0),
    ("erased-0", [*HDR, "-S", "0x20000", "-R", "0", "--pad", "-v", "1"], DEMO, 0),
    (
        "big-confirm",
        [
            *HDR,
            "--align",
            "8",
            "-S",
            "0x60000",
            "--confirm",
            "-v",
            "1.2.0",
            "-s",
            "2",
            "--custom-tlv",
            "0xa0",
            "0x13040000",
        ],
        BIG,
        0,
    ),
]


@pytest.fixture(scope="module")
def imgtool() -> str:
    return require_tool("imgtool", "pip install imgtool")


def _imgtool(tool: str, *args: object, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([tool, *map(str, args)], capture_output=True, text=True, check=False, timeout=120)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def _ours(*args: object) -> None:
    assert stm32ota([str(a) for a in args]) == 0


def _input(tmp_path: Path, source: Path, zeros: int) -> Path:
    if not zeros:
        return source
    path = tmp_path / "input.bin"
    path.write_bytes(bytes(zeros) + source.read_bytes())
    return path


@pytest.mark.parametrize(("options", "source", "zeros"), [m[1:] for m in MATRIX], ids=[m[0] for m in MATRIX])
def test_sign_byte_identical_to_imgtool(
    imgtool: str, tmp_path: Path, options: list[str], source: Path, zeros: int
) -> None:
    infile = _input(tmp_path, source, zeros)
    _imgtool(imgtool, "sign", "-k", ED_KEY, *options, infile, tmp_path / "theirs.bin")
    _ours("sign", "-k", ED_KEY, *options, infile, tmp_path / "ours.bin")
    theirs, ours = (tmp_path / "theirs.bin").read_bytes(), (tmp_path / "ours.bin").read_bytes()
    assert len(ours) == len(theirs)
    assert ours == theirs


@pytest.mark.parametrize("key", [ED_KEY, EC_KEY], ids=["ed25519", "ecdsa-p256"])
@pytest.mark.parametrize(
    "extra",
    [[], ["--confirm", "--custom-tlv", "0xa0", "0x13040000", "-s", "3"], ["--pad-sig", "--public-key-format", "full"]],
    ids=["plain", "confirm", "padsig-full"],
)
def test_imgtool_verifies_our_images(imgtool: str, tmp_path: Path, key: Path, extra: list[str]) -> None:
    out = tmp_path / "ours.bin"
    _ours("sign", "-k", key, *HDR, "--align", "8", "-S", "0x60000", "-v", "1.2.3", *extra, DEMO, out)
    result = _imgtool(imgtool, "verify", "-k", key, out)
    assert "Image was correctly validated" in result.stdout
    assert "1.2.3+0" in result.stdout
    assert parse_image(out.read_bytes()).digest.hex() in result.stdout


@pytest.mark.parametrize("key", [ED_KEY, EC_KEY], ids=["ed25519", "ecdsa-p256"])
def test_we_verify_imgtool_images(imgtool: str, tmp_path: Path, key: Path) -> None:
    out = tmp_path / "theirs.bin"
    _imgtool(
        imgtool,
        "sign",
        "-k",
        key,
        *HDR,
        "--align",
        "8",
        "-S",
        "0x60000",
        "-v",
        "4.5.6",
        "-s",
        "9",
        "--custom-tlv",
        "0xa0",
        "0x13040000",
        "--confirm",
        DEMO,
        out,
    )
    priv = load_private_key(key.read_bytes())
    verified = verify_image(out.read_bytes(), keys=[priv.public_key()], chip_id=0x413, min_security_counter=9)
    assert str(verified.version) == "4.5.6+0"
    _ours("verify", "-k", key, "--chip", "0x413", out)


@pytest.mark.parametrize("name", ["tampered.bin", "bad-signature.bin", "wrong-key.bin", "bad-magic.bin"])
def test_both_reject_bad_images(imgtool: str, name: str) -> None:
    result = _imgtool(imgtool, "verify", "-k", ED_KEY, BAD / name, check=False)
    assert result.returncode != 0
    assert "correctly validated" not in result.stdout
    assert stm32ota(["verify", "-k", str(ED_KEY), str(BAD / name)]) == 1


def test_both_reject_tampered_ecdsa(imgtool: str, tmp_path: Path) -> None:
    data = bytearray((FIRMWARE / "demo-1.0.0-ecdsa.signed.bin").read_bytes())
    data[0x280] ^= 0x01
    path = tmp_path / "tampered-ecdsa.bin"
    path.write_bytes(bytes(data))
    assert _imgtool(imgtool, "verify", "-k", EC_KEY, path, check=False).returncode != 0
    assert stm32ota(["verify", "-k", str(EC_KEY), str(path)]) == 1


def _dumpinfo(tool: str, path: Path) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(_imgtool(tool, "dumpinfo", "-f", "json", path).stdout)
    return info


def _inspect(capsys: pytest.CaptureFixture[str], path: Path) -> dict[str, Any]:
    capsys.readouterr()
    assert stm32ota(["inspect", "--json", str(path)]) == 0
    info: dict[str, Any] = json.loads(capsys.readouterr().out)
    return info


@pytest.mark.parametrize(
    "path",
    [
        FIRMWARE / "demo-1.0.0.signed.bin",
        FIRMWARE / "demo-1.0.0-ecdsa.signed.bin",
        FIRMWARE / "demo-big-1.2.0.signed.bin",
        BAD / "wrong-chip.bin",
        BAD / "unsigned.bin",
        BAD / "security-counter-0.bin",
    ],
    ids=lambda p: p.name,
)
def test_dumpinfo_agrees_with_inspect(imgtool: str, capsys: pytest.CaptureFixture[str], path: Path) -> None:
    theirs = _dumpinfo(imgtool, path)
    ours = _inspect(capsys, path)
    for field in ("magic", "load_addr", "hdr_size", "protected_tlv_size", "img_size", "flags", "version"):
        assert ours["header"][field] == theirs["header"][field], field
    area = theirs["tlv_area"]
    if ours["protected_tlvs"]:
        assert area["tlv_hdr_prot"]["tlv_tot"] == ours["header"]["protected_tlv_size"]
    assert area["tlv_hdr"]["tlv_tot"] == ours["sizes"]["tlvs"]
    for their_list, our_list in ((area["tlvs_prot"], ours["protected_tlvs"]), (area["tlvs"], ours["tlvs"])):
        assert [(t["type"], t["len"], t["data"]) for t in their_list] == [
            (t["type"], t["len"], t["data"]) for t in our_list
        ]
    sha = next(t["data"] for t in area["tlvs"] if t["type_name"] == "SHA256")
    assert sha == ours["digest"] == ours["stored_digest"]


def test_dumpinfo_agrees_on_trailer(imgtool: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "padded.bin"
    _ours("sign", "-k", ED_KEY, *HDR, "--align", "16", "-S", "0x20000", "--confirm", "-v", "1", DEMO, out)
    theirs = _dumpinfo(imgtool, out)["trailer"]
    ours = _inspect(capsys, out)["trailer"]
    for field in ("image_ok", "copy_done", "swap_info", "swap_size", "magic"):
        assert ours[field] == theirs[field], field


def test_imgtool_hex_input_matches_our_bin(imgtool: str, tmp_path: Path) -> None:
    """imgtool reads Intel HEX itself: its image from our committed .hex equals ours from the .bin."""
    options = [*HDR, "--align", "8", "-S", "0x60000", "-v", "1.0.0", "-s", "1", "--custom-tlv", "0xa0", "0x13040000"]
    _imgtool(imgtool, "sign", "-k", ED_KEY, *options, FIRMWARE / "demo-1.0.0.hex", tmp_path / "theirs.bin")
    assert (tmp_path / "theirs.bin").read_bytes() == (FIRMWARE / "demo-1.0.0.signed.bin").read_bytes()


HEX_OUT: list[tuple[str, list[str], Path]] = [
    ("hex-in", [], FIRMWARE / "demo-1.0.0.hex"),
    ("hex-in-confirm", ["--confirm"], FIRMWARE / "demo-1.0.0.hex"),
    ("hex-in-test-align16", ["--test", "--align", "16"], FIRMWARE / "demo-1.0.0.hex"),
    ("hex-in-pad-max-align32", ["--pad", "--max-align", "32"], FIRMWARE / "demo-1.0.0.hex"),
    ("hex-in-overwrite-only", ["--confirm", "--overwrite-only"], FIRMWARE / "demo-1.0.0.hex"),
    ("bin-in-hex-addr", ["-x", "0x08020000"], DEMO),
    ("bin-in-hex-addr-confirm", ["-x", "0x08080000", "--confirm"], DEMO),
]


@pytest.mark.parametrize(("extra", "source"), [h[1:] for h in HEX_OUT], ids=[h[0] for h in HEX_OUT])
def test_hex_output_identical_to_imgtool(imgtool: str, tmp_path: Path, extra: list[str], source: Path) -> None:
    """imgtool writes Intel HEX when OUT ends in .hex (without the padding, with the trailer fields); so do we."""
    options = [*HDR, "-S", "0x20000", "-v", "1.2.3", "-s", "4", *extra]
    _imgtool(imgtool, "sign", "-k", ED_KEY, *options, source, tmp_path / "theirs.hex")
    _ours("sign", "-k", ED_KEY, *options, source, tmp_path / "ours.hex")
    assert (tmp_path / "ours.hex").read_text() == (tmp_path / "theirs.hex").read_text()
    _ours("verify", "-k", ED_KEY, tmp_path / "theirs.hex")
    assert "correctly validated" in _imgtool(imgtool, "verify", "-k", ED_KEY, tmp_path / "ours.hex").stdout


def test_fresh_objcopy_inputs_sign_like_the_bin(tmp_path: Path) -> None:
    """HEX, S-record and ELF made now with arm-none-eabi-objcopy (or intelhex) sign to the committed image."""
    elf = FIRMWARE / "demo-1.0.0.elf"
    inputs = [elf]
    objcopy = shutil.which("arm-none-eabi-objcopy")
    if objcopy is not None:
        for fmt, suffix in (("ihex", ".hex"), ("srec", ".srec"), ("binary", ".bin")):
            out = tmp_path / f"fresh{suffix}"
            subprocess.run([objcopy, "-O", fmt, str(elf), str(out)], check=True)
            inputs.append(out)
    intelhex = pytest.importorskip("intelhex")
    ih = intelhex.IntelHex()
    ih.frombytes(DEMO.read_bytes(), offset=0x08020200)
    ih.write_hex_file(str(tmp_path / "intelhex.hex"))
    inputs.append(tmp_path / "intelhex.hex")
    options = [*HDR, "--align", "8", "-S", "0x60000", "-v", "1.0.0", "-s", "1", "--chip", "0x413"]
    for path in inputs:
        out = tmp_path / f"{path.name}.signed"
        _ours("sign", "-k", ED_KEY, *options, path, out)
        assert out.read_bytes() == (FIRMWARE / "demo-1.0.0.signed.bin").read_bytes(), path.name
