"""Interop with imgtool 2.5 for compressed (``--compression``) and encrypted (``-E``) images.

* We verify every image ``imgtool sign --compression lzma2|lzma2armthumb`` makes, for each key type: the
  stored image and the plain image inside it (DECOMP_SHA, DECOMP_SIGNATURE); the payload decompresses to the
  input; a tampered image is refused by both.
* ``inspect --json`` agrees with ``imgtool dumpinfo`` on compressed and encrypted images, and for an encrypted
  image says the digest was not computed (it covers the plaintext) instead of calling it a mismatch.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from protocol.cli import main as stm32ota
from protocol.image import load_private_key, parse_image, verify_image

from .test_imgtool_keys import BASE, DEMO, Imgtool, _assert_dumpinfo_agrees, _inspect, _pub

pytestmark = pytest.mark.interop

SIGNERS = ["ed25519", "ecdsa-p256", "ecdsa-p384", "rsa-2048"]
# Encryption: the key type whose public key -E takes -> the TLV imgtool writes.
ENCRYPTIONS = {"x25519": "ENCX25519", "ecdsa-p256": "ENCEC256", "rsa-2048": "ENCRSA2048"}


@pytest.fixture(scope="module")
def imgtool() -> Imgtool:
    from tests.conftest import require_module, require_tool

    require_tool("imgtool", "pip install imgtool")
    require_module("imgtool", "pip install imgtool")
    return Imgtool()


@pytest.fixture(scope="module")
def keys(imgtool: Imgtool, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    made = {}
    for kind in sorted({*SIGNERS, *ENCRYPTIONS}):
        path = folder / f"{kind}.pem"
        imgtool.run("keygen", "-k", path, "-t", kind)
        made[kind] = path
    return made


@pytest.mark.parametrize("compression", ["lzma2", "lzma2armthumb"])
@pytest.mark.parametrize("kind", SIGNERS)
def test_we_verify_compressed_images(
    imgtool: Imgtool,
    keys: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    compression: str,
) -> None:
    image = tmp_path / "compressed.bin"
    options = [*BASE, "-s", "2", "--custom-tlv", "0xa0", "0x13040000", "--compression", compression]
    imgtool.run("sign", "-k", keys[kind], *options, DEMO, image)
    data = image.read_bytes()
    # imgtool falls back to a plain image when compressing does not shrink it: make sure it did not.
    assert parse_image(data).header.image_size < len(DEMO.read_bytes())
    assert "COMPRESSED_LZMA2" in parse_image(data).header.flag_names
    verified = verify_image(data, keys=[load_private_key(keys[kind].read_bytes())], chip_id=0x413)
    assert verified.decompressed is not None
    assert verified.decompressed.payload == DEMO.read_bytes()
    assert stm32ota(["verify", "-k", str(_pub(keys[kind])), str(image)]) == 0
    _assert_dumpinfo_agrees(imgtool, capsys, image)
    info = _inspect(capsys, image)
    assert info["compression"]["type"] == compression
    assert info["compression"]["decompressed_size"] == len(DEMO.read_bytes())
    assert info["compression"]["decompressed_digest_ok"] is True
    # Tampered in the compressed payload: both refuse.
    header = parse_image(data).header
    bad = bytearray(data)
    bad[header.header_size + header.image_size // 2] ^= 0x01
    tampered = tmp_path / "tampered.bin"
    tampered.write_bytes(bytes(bad))
    assert not imgtool.verifies(_pub(keys[kind]), tampered)
    assert stm32ota(["verify", "-k", str(_pub(keys[kind])), str(tampered)]) == 1


@pytest.mark.parametrize("aes", ["128", "256"])
@pytest.mark.parametrize("enc", list(ENCRYPTIONS))
def test_inspect_encrypted_images(
    imgtool: Imgtool,
    keys: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    enc: str,
    aes: str,
) -> None:
    pub = tmp_path / "enc-pub.pem"
    imgtool.run("getpub", "-k", keys[enc], "-e", "pem", "-o", pub)
    image = tmp_path / "encrypted.bin"
    imgtool.run("sign", "-k", keys["ed25519"], "-E", pub, "--encrypt-keylen", aes, *BASE, DEMO, image)
    info: dict[str, Any] = _inspect(capsys, image)
    assert info["encryption"] == f"aes{aes}"
    assert info["digest_ok"] is None and info["digest"] is None
    assert "encrypted" in info["not_computed"]
    assert ENCRYPTIONS[enc] in [t["type_name"] for t in info["tlvs"]]
    _, output = imgtool.run("dumpinfo", "-f", "json", image)
    theirs = json.loads(output[output.index("{") :])
    assert [(t["type"], t["data"]) for t in theirs["tlv_area"]["tlvs"]] == [
        (t["type"], t["data"]) for t in info["tlvs"]
    ]
    assert ours_text(capsys, image).count("DOES NOT MATCH") == 0
    # verify cannot check it without the encryption key: a typed refusal, not a traceback.
    assert stm32ota(["verify", "-k", str(_pub(keys["ed25519"])), str(image)]) == 1


def ours_text(capsys: pytest.CaptureFixture[str], image: Path) -> str:
    capsys.readouterr()
    assert stm32ota(["inspect", str(image)]) == 0
    text: str = capsys.readouterr().out
    assert "not computed" in text
    return text


# Option sets for `sign --compression`: header padding or a zero header, slot padding and trailer, counter and
# dependencies, custom TLVs, the full public key.  --test does not reach imgtool's second (compressed) image:
# ours drops it too, so the outputs stay equal.  (Nor does --non-bootable, but imgtool's plain image keeps the
# flag, so its DECOMP_SHA matches no image MCUboot rebuilds; that pair is left out.)
COMPRESSION_OPTIONS = [
    [],
    ["--pad", "--confirm", "--align", "8", "-s", "auto"],
    ["-s", "3", "-d", "(0, 1.0.0)", "--custom-tlv", "0xa0", "0x13040100", "--public-key-format", "full"],
    ["--pad", "--test", "--max-align", "16"],
]
COMPRESSIBLE = (DEMO.read_bytes() * 8)[: 40 * 1024]  # the demo repeated: compresses well, as real firmware does


@pytest.fixture(scope="module")
def compressible(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("app") / "app.bin"
    path.write_bytes(COMPRESSIBLE)
    return path


def _compression_cases() -> list[Any]:
    """Every signer x compression x option set; the default run keeps the deterministic signers whole and one
    option set per randomised signer (the rest is soak)."""
    ids = ["plain", "confirm", "deps-full-key", "test"]
    cases = []
    for kind in [*SIGNERS, "rsa-3072", "unsigned"]:
        for compression in ("lzma2", "lzma2armthumb"):
            for n, options in enumerate(COMPRESSION_OPTIONS):
                slice_ = kind in ("ed25519", "unsigned") or (n == 1 and compression == "lzma2armthumb")
                marks = () if slice_ else (pytest.mark.soak,)
                cases.append(pytest.param(kind, compression, options, id=f"{kind}-{compression}-{ids[n]}", marks=marks))
    return cases


@pytest.mark.parametrize(("kind", "compression", "options"), _compression_cases())
def test_sign_compression_matches_imgtool(
    imgtool: Imgtool,
    keys: dict[str, Path],
    compressible: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    compression: str,
    options: list[str],
) -> None:
    """Ed25519 and unsigned: byte-identical; ECDSA and RSA-PSS (randomised): each side verifies the other's;
    inspect --json agrees with dumpinfo on both; tampered in the compressed payload, refused by both."""
    if kind == "rsa-3072" and kind not in keys:
        keys[kind] = tmp_path / "rsa-3072.pem"
        imgtool.run("keygen", "-k", keys[kind], "-t", kind)
    key = [] if kind == "unsigned" else ["-k", keys[kind]]
    args = [*key, *BASE, "--compression", compression, *options]
    theirs, ours = tmp_path / "theirs.bin", tmp_path / "ours.bin"
    imgtool.run("sign", *args, compressible, theirs)
    assert stm32ota(["sign", *map(str, args), str(compressible), str(ours)]) == 0
    mine = ours.read_bytes()
    assert "COMPRESSED_LZMA2" in parse_image(mine).header.flag_names
    if kind in ("ed25519", "unsigned"):
        assert mine == theirs.read_bytes()
    else:
        pub = _pub(keys[kind])
        assert imgtool.verifies(pub, ours)
        assert stm32ota(["verify", "-k", str(pub), str(theirs)]) == 0
        assert stm32ota(["verify", "-k", str(pub), str(ours)]) == 0
    for image in (ours, theirs):
        _assert_dumpinfo_agrees(imgtool, capsys, image)
    if kind != "unsigned":
        header = parse_image(mine).header
        bad = bytearray(mine)
        bad[header.header_size + header.image_size // 3] ^= 0x04
        tampered = tmp_path / "tampered.bin"
        tampered.write_bytes(bytes(bad))
        pub = _pub(keys[kind])
        assert not imgtool.verifies(pub, tampered)
        assert stm32ota(["verify", "-k", str(pub), str(tampered)]) == 1


def test_sign_compression_falls_back_to_the_plain_image_as_imgtool_does(
    imgtool: Imgtool, keys: dict[str, Path], tmp_path: Path
) -> None:
    """Random bytes do not compress: imgtool (and we) write the uncompressed image."""
    noise = tmp_path / "noise.bin"
    noise.write_bytes(random.Random(5).randbytes(6000))
    theirs, ours = tmp_path / "theirs.bin", tmp_path / "ours.bin"
    args = ["-k", keys["ed25519"], *BASE, "--compression", "lzma2"]
    imgtool.run("sign", *args, noise, theirs)
    assert stm32ota(["sign", *map(str, args), str(noise), str(ours)]) == 0
    assert ours.read_bytes() == theirs.read_bytes()
    assert "COMPRESSED_LZMA2" not in parse_image(ours.read_bytes()).header.flag_names
