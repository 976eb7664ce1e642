"""Interop with imgtool 2.5 for encrypted images (``-E``): RSA-OAEP, ECIES-P256, ECIES-X25519; AES-128/256.

Encryption is randomised (a fresh AES key each time), so:

* we decrypt and verify every image imgtool encrypts, for each wrapping key and AES size, with ``--pad``,
  ``--save-enctlv`` and ``--hmac-sha 512``; with another device's key, or altered, it is refused;
* our ``-E -c`` (clear) images equal imgtool's except for the random wrapped key: same hashed region, same TLV
  types, same trailer; imgtool verifies them;
* our encrypted images decrypt (with the decryption checked above against imgtool's) to exactly the image
  imgtool signs with ``-c``, and the stored payload is never the plaintext.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from protocol.cli import main as stm32ota
from protocol.image import parse_image
from protocol.image.encryption import decrypted_image, load_encryption_key

from .test_imgtool_keys import BASE, DEMO, Imgtool, _assert_dumpinfo_agrees

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
ED_KEY = ROOT / "assets" / "keys" / "dev-ed25519-DO-NOT-USE-IN-PRODUCTION.pem"
WRAPS = {"x25519": "ENCX25519", "ecdsa-p256": "ENCEC256", "rsa-2048": "ENCRSA2048"}
EXTRAS: dict[str, list[str]] = {
    "aes128": [],
    "aes256-confirm": ["--encrypt-keylen", "256", "--align", "8", "--confirm"],
    "save-enctlv-pad": ["--save-enctlv", "--pad", "-s", "4"],
}


@pytest.fixture(scope="module")
def imgtool() -> Imgtool:
    from tests.conftest import require_module, require_tool

    require_tool("imgtool", "pip install imgtool")
    require_module("imgtool", "pip install imgtool")
    return Imgtool()


@pytest.fixture(scope="module")
def enc_keys(imgtool: Imgtool, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path, Path]]:
    """(private, public, another device's private) per wrapping key type."""
    folder = tmp_path_factory.mktemp("enc")
    made = {}
    for kind in WRAPS:
        priv, pub, other = folder / f"{kind}.pem", folder / f"{kind}.pub.pem", folder / f"{kind}-other.pem"
        imgtool.run("keygen", "-k", priv, "-t", kind)
        imgtool.run("getpub", "-k", priv, "-e", "pem", "-o", pub)
        assert stm32ota(["keygen", "-k", str(other), "-t", kind]) == 0
        made[kind] = (priv, pub, other)
    return made


def _script() -> str:
    from tests.conftest import require_tool

    return require_tool("imgtool", "pip install imgtool")


def _ours(*args: object) -> int:
    return stm32ota([str(a) for a in args])


@pytest.mark.parametrize("extra", list(EXTRAS.values()), ids=list(EXTRAS))
@pytest.mark.parametrize("kind", list(WRAPS))
def test_we_decrypt_and_verify_imgtool_images(
    imgtool: Imgtool,
    enc_keys: dict[str, tuple[Path, Path, Path]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    extra: list[str],
) -> None:
    priv, pub, other = enc_keys[kind]
    image = tmp_path / "theirs.bin"
    imgtool.run("sign", "-k", ED_KEY, "-E", pub, *BASE, *extra, DEMO, image)
    _assert_dumpinfo_agrees(imgtool, capsys, image)
    data = image.read_bytes()
    assert WRAPS[kind] in [t.name for t in parse_image(data).tlvs]
    assert DEMO.read_bytes()[:64] not in data  # the payload is stored encrypted
    assert _ours("verify", "-k", ED_KEY, "--decrypt-key", priv, image) == 0
    plain = decrypted_image(parse_image(data), load_encryption_key(priv.read_bytes()))  # type: ignore[arg-type]
    assert plain.payload[: len(DEMO.read_bytes())] == DEMO.read_bytes()
    assert _ours("verify", "-k", ED_KEY, "--decrypt-key", other, image) == 1  # another device's key
    assert _ours("verify", "-k", ED_KEY, image) == 1  # no key: unsupported, says which key to give
    bad = bytearray(data)
    bad[0x200 + 5] ^= 1
    (tmp_path / "bad.bin").write_bytes(bytes(bad))
    assert _ours("verify", "-k", ED_KEY, "--decrypt-key", priv, tmp_path / "bad.bin") == 1


def test_x25519_hmac_sha512(imgtool: Imgtool, enc_keys: dict[str, tuple[Path, Path, Path]], tmp_path: Path) -> None:
    priv, pub, _ = enc_keys["x25519"]
    theirs, ours = tmp_path / "theirs.bin", tmp_path / "ours.bin"
    imgtool.run("sign", "-k", ED_KEY, "-E", pub, "--hmac-sha", "512", *BASE, DEMO, theirs)
    assert "ENCX25519_SHA512" in [t.name for t in parse_image(theirs.read_bytes()).tlvs]
    assert _ours("verify", "-k", ED_KEY, "--decrypt-key", priv, theirs) == 0
    assert _ours("sign", "-k", ED_KEY, "-E", pub, "--hmac-sha", "512", *BASE, DEMO, ours) == 0
    assert _ours("verify", "-k", ED_KEY, "--decrypt-key", priv, ours) == 0
    ec_pub = enc_keys["ecdsa-p256"][1]
    assert _ours("sign", "-k", ED_KEY, "-E", ec_pub, "--hmac-sha", "512", *BASE, DEMO, tmp_path / "x.bin") == 1


@pytest.mark.parametrize("extra", list(EXTRAS.values()), ids=list(EXTRAS))
@pytest.mark.parametrize("kind", list(WRAPS))
def test_our_images_match_imgtool_but_for_the_random_key(
    imgtool: Imgtool,
    enc_keys: dict[str, tuple[Path, Path, Path]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    extra: list[str],
) -> None:
    priv, pub, _ = enc_keys[kind]
    their_clear, our_clear, ours = tmp_path / "tc.bin", tmp_path / "oc.bin", tmp_path / "o.bin"
    imgtool.run("sign", "-k", ED_KEY, "-E", pub, "-c", *BASE, *extra, DEMO, their_clear)
    assert _ours("sign", "-k", ED_KEY, "-E", pub, "-c", *BASE, *extra, DEMO, our_clear) == 0
    assert _ours("sign", "-k", ED_KEY, "-E", pub, *BASE, *extra, DEMO, ours) == 0
    theirs_data, clear_data, our_data = their_clear.read_bytes(), our_clear.read_bytes(), ours.read_bytes()
    t, c, o = parse_image(theirs_data), parse_image(clear_data), parse_image(our_data)
    assert len(clear_data) == len(theirs_data) == len(our_data)
    assert c.hashed == t.hashed  # header (flags, padded size), plain payload, protected TLVs: identical
    assert [x.type for x in c.tlvs] == [x.type for x in t.tlvs] == [x.type for x in o.tlvs]
    assert [len(x.value) for x in c.tlvs] == [len(x.value) for x in t.tlvs]
    assert clear_data[c.end :] == theirs_data[t.end :]  # padding and trailer
    assert imgtool.verifies(ED_KEY, our_clear)
    # Our encrypted image: not the plaintext, and decrypted it is imgtool's clear image.
    assert o.payload != t.payload
    plain = decrypted_image(o, load_encryption_key(priv.read_bytes()))  # type: ignore[arg-type]
    assert plain.hashed == t.hashed
    assert _ours("verify", "-k", ED_KEY, "--decrypt-key", priv, ours) == 0
    for path in (their_clear, our_clear, ours):
        _assert_dumpinfo_agrees(imgtool, capsys, path)


@pytest.mark.parametrize(("signer", "wrap"), [("ecdsa-p256", "x25519"), ("rsa-2048", "ecdsa-p256")])
def test_key_pairing_rule(
    imgtool: Imgtool, enc_keys: dict[str, tuple[Path, Path, Path]], tmp_path: Path, signer: str, wrap: str
) -> None:
    key = tmp_path / "signer.pem"
    imgtool.run("keygen", "-k", key, "-t", signer)
    pub = enc_keys[wrap][1]
    code, _ = imgtool.run("sign", "-k", key, "-E", pub, *BASE, DEMO, tmp_path / "t.bin", check=False)
    assert code != 0
    assert _ours("sign", "-k", key, "-E", pub, *BASE, DEMO, tmp_path / "o.bin") == 1


@pytest.mark.parametrize("minimal", [[], ["--minimal"]], ids=["full", "minimal"])
@pytest.mark.parametrize(
    ("kind", "fmt"), [("x25519", []), ("ecdsa-p256", []), ("ecdsa-p256", ["-f", "openssl"]), ("rsa-2048", [])]
)
def test_getpriv_same_array_as_imgtool(
    imgtool: Imgtool,
    enc_keys: dict[str, tuple[Path, Path, Path]],
    tmp_path: Path,
    kind: str,
    fmt: list[str],
    minimal: list[str],
) -> None:
    priv = enc_keys[kind][0]
    # imgtool writes getpriv's array to the sys.stdout bound when it was imported: run the script.
    result = subprocess.run(
        [_script(), "getpriv", "-k", str(priv), *fmt, *minimal], capture_output=True, text=True, check=True, timeout=120
    )
    theirs = result.stdout
    assert _ours("getpriv", "-k", priv, *fmt, *minimal, "-o", tmp_path / "ours.c") == 0
    ours = (tmp_path / "ours.c").read_text()
    # Only the "Autogenerated by ..." comment names the tool.
    assert ours.splitlines()[1:] == theirs.splitlines()[1:]


def test_getpriv_refuses_what_imgtool_refuses(imgtool: Imgtool, enc_keys: dict[str, tuple[Path, Path, Path]]) -> None:
    for key, fmt in (
        (ED_KEY, []),
        (enc_keys["rsa-2048"][0], ["-f", "pkcs8"]),
        (enc_keys["x25519"][0], ["-f", "openssl"]),
    ):
        code, _ = imgtool.run("getpriv", "-k", key, *fmt, check=False)
        assert code != 0
        assert _ours("getpriv", "-k", key, *fmt) == 1


@pytest.mark.parametrize("kind", list(WRAPS))
def test_encrypted_and_compressed(
    imgtool: Imgtool, enc_keys: dict[str, tuple[Path, Path, Path]], tmp_path: Path, kind: str
) -> None:
    """imgtool compresses, then encrypts: we decrypt, check the stored image, decompress, check the plain one."""
    priv, pub, _ = enc_keys[kind]
    image = tmp_path / "theirs.bin"
    imgtool.run("sign", "-k", ED_KEY, "-E", pub, "--compression", "lzma2", *BASE, DEMO, image)
    flags = parse_image(image.read_bytes()).header.flag_names
    assert "COMPRESSED_LZMA2" in flags and "ENCRYPTED_AES128" in flags
    assert _ours("verify", "-k", ED_KEY, "--decrypt-key", priv, image) == 0
    assert _ours("inspect", image) == 0  # says what it could not compute, exit 0
