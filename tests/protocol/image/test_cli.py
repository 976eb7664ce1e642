"""The keygen/getpub/sign/verify/inspect commands through ``protocol.cli.main`` (exit codes, output, errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol.cli import main
from protocol.image import key_hash, load_private_key, parse_image, public_key_der, verify_image

from .conftest import BAD, DEV_ECDSA, DEV_ED25519, FIRMWARE, KEYS

SIGN_ARGS = ["-H", "0x200", "--pad-header", "--align", "8", "-S", "0x60000"]


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_keygen_and_getpub(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "k.pem"
    code, _, err = run(capsys, "keygen", "-k", key_file, "-t", "ecdsa-p256")
    assert code == 0 and "key hash" in err
    assert key_file.stat().st_mode & 0o077 == 0
    key = load_private_key(key_file.read_bytes())
    code, out, _ = run(capsys, "getpub", "-k", key_file)
    assert code == 0 and "const unsigned char ecdsa_pub_key[] = {" in out
    assert f"ecdsa_pub_key_len = {len(public_key_der(key))};" in out
    code, out, _ = run(capsys, "getpub", "-k", key_file, "-e", "lang-rust")
    assert "static ECDSA_PUB_KEY: &[u8] = &[" in out
    code, out, _ = run(capsys, "getpub", "-k", key_file, "-e", "pem")
    assert out.startswith("-----BEGIN PUBLIC KEY-----")
    raw = tmp_path / "pub.der"
    assert run(capsys, "getpub", "-k", key_file, "-e", "raw", "-o", raw)[0] == 0
    assert raw.read_bytes() == public_key_der(key)


def test_getpub_raw_to_stdout(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["getpub", "-k", str(DEV_ED25519), "-e", "raw"]) == 0
    out = capsysbinary.readouterr().out
    assert out == public_key_der(load_private_key(DEV_ED25519.read_bytes()))


def test_keygen_refuses_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "k.pem"
    key_file.write_text("precious")
    code, _, err = run(capsys, "keygen", "-k", key_file, "-t", "ed25519")
    assert code == 1 and "refusing to overwrite" in err and "--force" in err
    assert key_file.read_text() == "precious"
    assert run(capsys, "keygen", "-k", key_file, "-t", "ed25519", "--force")[0] == 0


@pytest.mark.parametrize("source", ["demo-1.1.0.bin"])
def test_sign_reproduces_committed_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str) -> None:
    out_file = tmp_path / "o.bin"
    code, _, err = run(
        capsys,
        "sign",
        "-k",
        DEV_ED25519,
        *SIGN_ARGS,
        "-v",
        "1.1.0",
        "-s",
        "2",
        "--chip",
        "stm32f407",
        FIRMWARE / source,
        out_file,
    )
    assert code == 0, err
    assert out_file.read_bytes() == (FIRMWARE / "demo-1.1.0.signed.bin").read_bytes()


@pytest.mark.parametrize("source", ["demo-1.0.0.elf", "demo-1.0.0.hex", "demo-1.0.0.srec", "demo-1.0.0.bin"])
def test_sign_any_input_format(tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str) -> None:
    out_file = tmp_path / "o.bin"
    argv = ["sign", "-k", DEV_ED25519, *SIGN_ARGS, "-v", "1.0.0", "-s", "1", "--custom-tlv", "0xa0", "0x13040000"]
    assert run(capsys, *argv, FIRMWARE / source, out_file)[0] == 0
    assert out_file.read_bytes() == (FIRMWARE / "demo-1.0.0.signed.bin").read_bytes()


def test_sign_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "o.bin"
    code, _, err = run(
        capsys,
        "sign",
        "-k",
        DEV_ED25519,
        "-H",
        "0x200",
        "--pad-header",
        "--align",
        "4",
        "-S",
        "0x20000",
        "--confirm",
        "-s",
        "auto",
        "-v",
        "1.2.3+4",
        "--custom-tlv",
        "0xb1",
        "text",
        "--chip",
        "0x415",
        "--board",
        "9",
        "--public-key-format",
        "full",
        FIRMWARE / "demo-1.0.0.bin",
        out_file,
    )
    assert code == 0, err
    image = parse_image(out_file.read_bytes())
    assert len(out_file.read_bytes()) == 0x20000
    assert image.trailer is not None and image.trailer.confirmed
    assert image.security_counter == (1 << 24) + (2 << 16) + 3
    assert image.find(0xB1)[0].value == b"text"
    assert image.find(0xA0)[0].value == bytes.fromhex("15040900")
    assert image.public_key_der is not None


def test_sign_unsigned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "o.bin"
    code, _, err = run(capsys, "sign", *SIGN_ARGS, "-v", "1", FIRMWARE / "demo-1.0.0.bin", out_file)
    assert code == 0 and "unsigned" in err
    code, out, _ = run(capsys, "verify", out_file)
    assert code == 0 and "signature not checked" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-s", "lots"], "security counter"),
        (["--custom-tlv", "0x10", "0x00"], "custom TLV type"),
        (["--chip", "stm32z999"], "unknown chip"),
        (["-v", "1.2.3.4"], "invalid version"),
    ],
)
def test_sign_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str) -> None:
    argv = ["sign", "-k", DEV_ED25519, *SIGN_ARGS, "-v", "1", *extra, FIRMWARE / "demo-1.0.0.bin", tmp_path / "o"]
    code, _, err = run(capsys, *argv)
    assert code == 1 and message in err and err.startswith("stm32ota: error:")


def test_sign_without_pad_header_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sign", "-k", DEV_ED25519, "-H", "0x200", "-S", "0x60000", "-v", "1"]
    code, _, err = run(capsys, *argv, FIRMWARE / "demo-1.0.0.bin", tmp_path / "o")
    assert code == 1 and "hint: add --pad-header" in err


def test_sign_missing_input_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "sign", "-k", DEV_ED25519, *SIGN_ARGS, "-v", "1", tmp_path / "none.bin", tmp_path / "o")
    assert code == 1 and "cannot read" in err
    code, _, err = run(
        capsys, "sign", "-k", tmp_path / "k.pem", *SIGN_ARGS, "-v", "1", FIRMWARE / "demo-1.0.0.bin", tmp_path / "o"
    )
    assert code == 1 and "cannot read key file" in err


def test_sign_with_public_key_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pub = KEYS / "dev-ed25519-DO-NOT-USE-IN-PRODUCTION.pub.pem"
    code, _, err = run(capsys, "sign", "-k", pub, *SIGN_ARGS, "-v", "1", FIRMWARE / "demo-1.0.0.bin", tmp_path / "o")
    assert code == 1 and "bad-key-file" in err


def test_verify_ok(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "verify", "-k", DEV_ED25519, FIRMWARE / "demo-1.1.0.signed.bin")
    assert code == 0 and "OK: version 1.1.0+0" in out and "security counter 2" in out
    code, out, _ = run(
        capsys,
        "verify",
        "-k",
        KEYS / "dev-ecdsa-p256-DO-NOT-USE-IN-PRODUCTION.pub.pem",
        "-k",
        DEV_ED25519,
        "--chip",
        "f407",
        "--board",
        "3",
        "--min-security-counter",
        "1",
        "--json",
        FIRMWARE / "demo-1.0.0-ecdsa.signed.bin",
    )
    result = json.loads(out)
    assert code == 0 and result["ok"] and result["key_type"] == "ecdsa-p256"
    assert result["key_hash"] == key_hash(load_private_key(DEV_ECDSA.read_bytes())).hex()
    assert result["hw_tag"] == {"chip_id": 0x413, "board_id": 0}


@pytest.mark.parametrize(
    ("image", "extra", "reason"),
    [
        ("tampered.bin", [], "digest-mismatch"),
        ("wrong-key.bin", [], "unknown-key"),
        ("wrong-chip.bin", ["--chip", "0x413"], "wrong-chip"),
        ("security-counter-0.bin", ["--min-security-counter", "1"], "security-counter"),
        ("truncated.bin", [], "truncated"),
        ("bad-signature.bin", [], "bad-signature"),
    ],
)
def test_verify_says_which_check_failed(
    capsys: pytest.CaptureFixture[str], image: str, extra: list[str], reason: str
) -> None:
    code, _, err = run(capsys, "verify", "-k", DEV_ED25519, *extra, BAD / image)
    assert code == 1 and f"stm32ota: error: {reason}:" in err
    code, out, _ = run(capsys, "verify", "-k", DEV_ED25519, "--json", *extra, BAD / image)
    assert json.loads(out) == {
        "ok": False,
        "reason": reason,
        "message": json.loads(out)["message"],
        "image": str(BAD / image),
    }


def test_verify_checks_need_a_key(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "verify", "--chip", "0x413", FIRMWARE / "demo-1.1.0.signed.bin")
    assert code == 1 and "need a key" in err


def test_verify_digest_only(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "verify", "--json", FIRMWARE / "demo-1.1.0.signed.bin")
    assert code == 0 and json.loads(out)["signature_checked"] is False
    assert run(capsys, "verify", BAD / "tampered.bin")[0] == 1


def test_inspect_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inspect", FIRMWARE / "demo-big-1.2.0.signed.bin")
    assert code == 0
    for text in (
        "version:          1.2.0+0",
        "signature:        ED25519",
        "hardware tag:     chip 0x413",
        "security counter: 2",
        "(matches)",
        "KEYHASH",
        "SEC_CNT",
    ):
        assert text in out


def test_inspect_json(capsys: pytest.CaptureFixture[str]) -> None:
    path = FIRMWARE / "demo-1.0.0.signed.bin"
    code, out, _ = run(capsys, "inspect", "--json", path)
    info = json.loads(out)
    image = parse_image(path.read_bytes())
    assert code == 0
    assert info["header"]["version"] == "1.0.0+0" and info["header"]["img_size"] == image.header.image_size
    assert info["digest"] == image.digest.hex() and info["digest_ok"]
    assert [t["type_name"] for t in info["tlvs"]] == ["SHA256", "KEYHASH", "ED25519"]
    assert info["protected_tlvs"][1]["value"] == {"chip_id": 0x413, "board_id": 0}
    assert info["security_counter"] == 1 and info["trailer"] is None
    assert verify_image(path.read_bytes(), keys=[load_private_key(DEV_ED25519.read_bytes())])


def test_inspect_padded_and_tampered(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "o.bin"
    run(capsys, "sign", "-k", DEV_ED25519, *SIGN_ARGS, "--test", "-v", "1", FIRMWARE / "demo-1.0.0.bin", out_file)
    code, out, _ = run(capsys, "inspect", out_file)
    assert code == 0 and "trailer:" in out and "image_ok 0xff" in out
    code, out, _ = run(capsys, "inspect", BAD / "tampered.bin")
    assert code == 0 and "DOES NOT MATCH" in out


def test_inspect_broken(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "inspect", BAD / "bad-magic.bin")
    assert code == 1 and "bad-magic" in err and "hint:" in err


def test_sign_hex_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "o.hex"
    code, _, _ = run(
        capsys,
        "sign",
        "-k",
        DEV_ED25519,
        *SIGN_ARGS,
        "-v",
        "1.0.0",
        "-s",
        "1",
        "--chip",
        "0x413",
        "--confirm",
        FIRMWARE / "demo-1.0.0.elf",
        out_file,
    )
    assert code == 0 and out_file.read_bytes().startswith(b":020000040802F0\n:100000003DB8F396")
    code, out, _ = run(capsys, "inspect", out_file)
    assert code == 0 and "confirmed" in out
    assert run(capsys, "verify", "-k", DEV_ED25519, "--chip", "0x413", out_file)[0] == 0


def test_sign_hex_output_needs_an_address(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "sign", "-k", DEV_ED25519, *SIGN_ARGS, "-v", "1", FIRMWARE / "demo-1.0.0.bin", tmp_path / "o.hex"
    )
    assert code == 1 and "--hex-addr" in err


def test_getpub_bad_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    code, _, err = run(capsys, "getpub", "-k", bad)
    assert code == 1 and "bad-key-file" in err
    code, _, err = run(capsys, "getpub", "-k", tmp_path / "missing.pem")
    assert code == 1 and "cannot read key file" in err


def test_verify_bad_key_file_and_missing_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_bytes(b"\x00\x01")
    code, _, err = run(capsys, "verify", "-k", bad, FIRMWARE / "demo-1.1.0.signed.bin")
    assert code == 1 and "bad-key-file" in err
    code, _, err = run(capsys, "verify", "-k", DEV_ED25519, tmp_path / "none.bin")
    assert code == 1 and "cannot read image" in err
    code, _, err = run(capsys, "inspect", tmp_path / "none.bin")
    assert code == 1 and "cannot read image" in err


def test_unwritable_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "no-such-dir" / "o.bin"
    code, _, err = run(capsys, "sign", "-k", DEV_ED25519, *SIGN_ARGS, "-v", "1", FIRMWARE / "demo-1.0.0.bin", out)
    assert code == 1 and "cannot write image" in err
    code, _, err = run(capsys, "keygen", "-k", out, "-t", "ed25519")
    assert code == 1 and "cannot write key file" in err


def test_sign_input_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overlap = tmp_path / "overlap.hex"
    overlap.write_text(":020000000102FB\n:0100010003FB\n:00000001FF\n")
    code, _, err = run(capsys, "sign", "-k", DEV_ED25519, *SIGN_ARGS, "-v", "1", overlap, tmp_path / "o")
    assert code == 1 and "overlap" in err
    cut = tmp_path / "cut.hex"
    cut.write_bytes((FIRMWARE / "demo-1.0.0.hex").read_bytes()[:500])
    code, _, err = run(capsys, "sign", "-k", DEV_ED25519, *SIGN_ARGS, "-v", "1", cut, tmp_path / "o")
    assert code == 1 and "bad-input" in err
