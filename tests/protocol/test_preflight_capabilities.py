"""protocol.preflight against what the device's INFO says it can do (protocol 1.2 capabilities): an image it
cannot verify, decrypt or install is refused before the first byte, with a reason slug and a hint; an older
device, which does not say, gets the image (and the device judges it)."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519

from protocol.image import generate_key, key_hash, reason_of
from protocol.image.capabilities import capabilities_for
from protocol.preflight import check_image
from protocol.update.messages import Capabilities, DeviceInfo

from .test_preflight import KEY, PUB, device, refused, signed

X25519 = x25519.X25519PrivateKey.generate()
RSA = generate_key("rsa-2048")
ED_X25519 = capabilities_for({"ed25519"}, "ecies-x25519")


def with_caps(caps: Capabilities | None, *extra_keys: object) -> DeviceInfo:
    info = device()
    hashes = info.key_hashes + tuple(key_hash(k) for k in extra_keys)  # type: ignore[arg-type]
    return dataclasses.replace(info, capabilities=caps, key_hashes=hashes)


def test_an_rsa_signed_image_for_an_ecdsa_only_device() -> None:
    info = with_caps(capabilities_for({"ecdsa-p256"}), RSA)
    err = refused(signed(key=RSA), info)
    assert reason_of(err) == "unsupported-signature"
    assert "rsa-2048" in str(err) and "ecdsa-p256" in str(err)
    assert "ecdsa-p256 key" in (err.hint or "")


def test_a_sha512_image_for_a_sha256_only_device() -> None:
    caps = Capabilities(signatures=frozenset({"ed25519"}), digests=frozenset({"sha256"}))
    err = refused(signed(sha="512"), with_caps(caps))
    assert reason_of(err) == "unsupported-digest"
    assert "SHA512" in str(err) and "SHA256" in str(err)
    assert "--sha 256" in (err.hint or "")
    check_image(signed(), with_caps(caps), keys=[PUB])  # its SHA-256 image goes


def test_a_pure_signature_needs_a_device_that_verifies_pure() -> None:
    caps = Capabilities(signatures=frozenset({"ed25519"}), digests=frozenset({"sha256", "sha512"}))
    assert reason_of(refused(signed(pure=True), with_caps(caps))) == "unsupported-signature"
    check_image(signed(pure=True), with_caps(ED_X25519), keys=[PUB])


def test_an_encrypted_image_for_a_device_that_decrypts_nothing() -> None:
    err = refused(signed(encrypt_key=X25519.public_key()), with_caps(capabilities_for({"ed25519"})))
    assert reason_of(err) == "no-decrypt-key"
    assert "decrypts no image" in str(err)
    assert "without -E" in (err.hint or "")


@pytest.mark.parametrize(
    ("enc_key", "device_scheme", "bits"),
    [
        (X25519.public_key(), "rsa-oaep", 128),
        (ec.generate_private_key(ec.SECP256R1()).public_key(), "ecies-x25519", 128),
        (rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(), "ecies-p256", 256),
    ],
)
def test_an_encrypted_image_wrapped_for_another_scheme(enc_key: object, device_scheme: str, bits: int) -> None:
    info = with_caps(capabilities_for({"ed25519"}, device_scheme))
    err = refused(signed(encrypt_key=enc_key, encrypt_keylen=bits), info)
    assert reason_of(err) == "no-decrypt-key"
    assert device_scheme in str(err)
    assert "-E ENC_PUB.pem" in (err.hint or "")


def test_an_aes256_image_for_an_aes128_device() -> None:
    caps = dataclasses.replace(ED_X25519, aes_bits=frozenset({128}))
    err = refused(signed(encrypt_key=X25519.public_key(), encrypt_keylen=256), with_caps(caps))
    assert reason_of(err) == "no-decrypt-key" and "AES-256" in str(err)


def test_an_encrypted_image_for_a_device_that_decrypts_it() -> None:
    """The digest and signature cover the plaintext: the host checks what it can (counter, tag, key, slot
    rules, version) and says the device checks the rest."""
    data = signed(encrypt_key=X25519.public_key())
    report = check_image(data, with_caps(ED_X25519), keys=[PUB])
    assert not report.signature_checked
    assert any("after decrypting" in n for n in report.notes)
    assert report.data == data
    wrong_chip = signed(encrypt_key=X25519.public_key(), hw_tag=None, custom_tlvs=[(0xA0, b"\x10\x04\x00\x00")])
    assert reason_of(refused(wrong_chip, with_caps(ED_X25519))) == "wrong-chip"
    assert reason_of(refused(signed(encrypt_key=X25519.public_key(), version="0.9.0"), with_caps(ED_X25519))) == (
        "downgrade"
    )
    stranger = signed(encrypt_key=X25519.public_key(), key=generate_key("ed25519"))
    assert reason_of(refused(stranger, with_caps(ED_X25519))) == "unknown-key"


def test_an_older_device_that_does_not_say_gets_the_encrypted_image() -> None:
    report = check_image(signed(encrypt_key=X25519.public_key()), with_caps(None), keys=[PUB])
    assert any("does not report whether it decrypts" in n for n in report.notes)


@pytest.mark.parametrize("compression", ["lzma2", "lzma2armthumb"])
def test_a_compressed_image_for_a_swapping_device(compression: str) -> None:
    app_options = {"compression": compression}
    data = signed(**app_options)
    err = refused(data, with_caps(capabilities_for({"ed25519"})))
    assert reason_of(err) == "compressed"
    assert "without --compression" in (err.hint or "")
    check_image(data, with_caps(capabilities_for({"ed25519"}, decompress=True)), keys=[PUB])
    check_image(data, with_caps(None), keys=[PUB])  # an older device judges it itself


@pytest.mark.parametrize(
    ("deps", "words"),
    [([(1, "1.0.0")], "no image 1"), ([(0, "2.0.0")], "would be 1.2.0")],
)
def test_an_unmet_dependency(deps: list[tuple[int, str]], words: str) -> None:
    err = refused(signed(dependencies=deps), with_caps(ED_X25519))
    assert reason_of(err) == "dependency"
    assert words in str(err)
    assert "stm32ota inspect" in (err.hint or "")
    check_image(signed(dependencies=[(0, "1.2.0")]), with_caps(ED_X25519), keys=[PUB])


def test_the_signing_key_is_still_the_first_judge_of_an_unencrypted_image() -> None:
    """Capabilities come first, but a device that verifies Ed25519 still trusts only its own keys."""
    err = refused(signed(key=generate_key("ed25519")), with_caps(ED_X25519))
    assert reason_of(err) == "unknown-key"
    assert KEY is not None
