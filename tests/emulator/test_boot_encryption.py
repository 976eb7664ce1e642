"""The emulated MCUboot decrypts: an encrypted image in the secondary slot is decrypted into the primary during
the swap and encrypted again on its way back; the secondary slot and the scratch sector never hold its
plaintext, at any flash operation, power cuts included.  A device without the matching key refuses it
(``NO_DECRYPT_KEY``); dependencies and compression are refused with their own statuses; INFO lists what the
device verifies and decrypts."""

from __future__ import annotations

import dataclasses
import hashlib
import random
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519

from emulator.chips import CHIPS, SRAM_BASE
from emulator.flash import PowerCut
from protocol.errors import DeviceError, ProtocolError
from protocol.image import HardwareTag, load_private_key, parse_image, sign_image
from protocol.image.encryption import EncryptionPrivateKey
from protocol.update import SlotState
from protocol.update.status import Status

from .chip_harness import DEV_KEY, Chip, command, info, make_image, transfer, update

F407 = CHIPS["stm32f407vg"]
SIGNER = load_private_key(DEV_KEY.read_bytes())  # Ed25519: imgtool lets it sign for any encryption key
SCHEMES = ("ecies-x25519", "ecies-p256", "rsa-oaep")
CHUNK = 64  # plaintext windows looked for in the secondary slot and the scratch sector


def _new_key(scheme: str) -> EncryptionPrivateKey:
    if scheme == "ecies-x25519":
        return x25519.X25519PrivateKey.generate()
    if scheme == "ecies-p256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: EncryptionPrivateKey) -> bytes:
    pkcs8 = serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())


@pytest.fixture(scope="module")
def enc_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, EncryptionPrivateKey]]:
    """One device key per scheme, and a second X25519 key ("another device"), made once for the module."""
    folder = tmp_path_factory.mktemp("enc-keys")
    out: dict[str, tuple[Path, EncryptionPrivateKey]] = {}
    for name in (*SCHEMES, "other"):
        key = _new_key("ecies-x25519" if name == "other" else name)
        path = folder / f"{name}.pem"
        path.write_bytes(_pem(key))
        out[name] = (path, key)
    return out


def _plain(version: str, size: int) -> bytes:
    """An application with a Cortex-M vector table and a body no other image shares."""
    vectors = struct.pack("<II", SRAM_BASE + 0x1000, F407.layout.primary[0] + 0x200 + 0x101)
    rng = random.Random(f"{version}/{size}")
    return vectors + bytes(rng.getrandbits(8) for _ in range(size - 8))


def _image(version: str, counter: int, *, size: int = 5000, **options: Any) -> tuple[bytes, bytes]:
    """(the signed image, its application) -- encrypted when ``encrypt_key`` is among ``options``."""
    app = _plain(version, size)
    image = sign_image(
        app,
        SIGNER,
        version=version,
        header_size=0x200,
        pad_header=True,
        align=F407.write_width,
        security_counter=counter,
        hw_tag=HardwareTag(chip_id=F407.dev_id, board_id=1),
        **options,
    )
    return image, app


def _region(chip: Chip, area: tuple[int, int]) -> bytes:
    start, size = area
    return chip.flash.read(start, size)


def _watch_plaintext(chip: Chip, app: bytes) -> Callable[[], None]:
    """Check before every flash operation (and on demand) that no window of ``app`` is in the secondary slot
    or the scratch sector; returns the check."""
    windows = [app[i : i + CHUNK] for i in range(0x40, len(app) - CHUNK, 512)]
    layout = chip.profile.layout

    def check() -> None:
        for area, name in ((layout.secondary, "secondary slot"), (layout.scratch, "scratch sector")):
            data = _region(chip, area)
            found = [w for w in windows if w in data]
            assert not found, f"plaintext of the encrypted image in the {name} (flash op {chip.flash.ops})"

    inner = chip.flash.on_op

    def on_op(op: int) -> None:
        check()
        if inner is not None:
            inner(op)

    chip.flash.on_op = on_op
    return check


def _digest_of_plain(encrypted: bytes, key: EncryptionPrivateKey) -> bytes:
    from protocol.image.encryption import decrypted_image

    return decrypted_image(parse_image(encrypted), key).digest


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("bits", [128, 256])
def test_an_encrypted_update_is_decrypted_into_the_primary_and_encrypted_again_on_rollback(
    scheme: str, bits: int, enc_keys: dict[str, tuple[Path, EncryptionPrivateKey]]
) -> None:
    path, key = enc_keys[scheme]
    old, _ = _image("1.0.0", 1)
    new, app = _image("1.1.0", 2, encrypt_key=key, encrypt_keylen=bits)
    assert app[0x40:0x80] not in new  # the file itself carries no plaintext
    chip = Chip(primary=old, enc_key=path)
    check = _watch_plaintext(chip, app)
    update(chip, new)  # transfer, VERIFY (decrypts to check), ACTIVATE test, reboot: swap, boot, self-test confirm
    plain_digest = _digest_of_plain(new, key)
    assert chip.running == plain_digest
    primary = chip.flash.read(F407.layout.primary[0], len(new))
    end = 0x200 + parse_image(new).header.image_size  # imgtool pads the payload to 16 bytes before encrypting
    assert primary[0x200:end] == app + bytes(end - 0x200 - len(app))  # decrypted in place
    assert primary[:0x200] == new[:0x200] and primary[end:] == new[end:]  # the header and TLVs as they were
    slots = info(chip)
    assert slots.slot(0).state is SlotState.CONFIRMED and slots.slot(0).digest == plain_digest
    check()

    command(chip, "rollback")  # the confirmed image goes back into the secondary slot, encrypted again
    command(chip, "reboot")
    chip.settle()
    assert chip.running == parse_image(old).digest
    assert chip.flash.read(F407.layout.secondary[0], len(new)) == new  # the same ciphertext as the file
    assert info(chip).slot(1).digest == plain_digest  # the device reads its plaintext's digest
    check()

    command(chip, "rollback")  # and forward again: decrypted with the key its TLV still wraps
    command(chip, "reboot")
    chip.settle()
    assert chip.running == plain_digest
    check()


def test_a_test_image_that_is_not_confirmed_goes_back_encrypted(
    enc_keys: dict[str, tuple[Path, EncryptionPrivateKey]],
) -> None:
    path, key = enc_keys["ecies-x25519"]
    old, _ = _image("1.0.0", 1)
    new, app = _image("1.1.0", 2, encrypt_key=key)
    chip = Chip(primary=old, enc_key=path, auto_confirm=False)
    check = _watch_plaintext(chip, app)
    update(chip, new)
    assert chip.running == _digest_of_plain(new, key)
    assert info(chip).slot(0).state is SlotState.ACTIVE
    command(chip, "reboot")  # not confirmed: MCUboot reverts
    chip.settle()
    assert chip.running == parse_image(old).digest
    assert chip.flash.read(F407.layout.secondary[0], len(new)) == new
    check()


def _cut_run(old: bytes, new: bytes, app: bytes, path: Path, cut: int | None) -> tuple[Chip, int]:
    chip = Chip(primary=old, enc_key=path)
    start = chip.flash.ops
    check = _watch_plaintext(chip, app)
    if cut is not None:
        chip.cut_at = start + cut
    try:
        update(chip, new)
    except (PowerCut, ProtocolError):
        pass  # the host conversation broke when the device lost power
    chip.settle()
    check()
    return chip, chip.flash.ops - start


def _sweep(enc_keys: dict[str, tuple[Path, EncryptionPrivateKey]], sample: int | None) -> None:
    path, key = enc_keys["ecies-x25519"]
    old, _ = _image("1.0.0", 1, size=3000)
    new, app = _image("1.1.0", 2, size=3700, encrypt_key=key)
    third, third_app = _image("1.2.0", 3, size=1500, encrypt_key=key)
    plain = _digest_of_plain(new, key)
    _, total = _cut_run(old, new, app, path, None)
    assert total > 20
    points = list(range(1, total + 1))
    if sample is not None and sample < total:  # the last operations are the swap's: always all of them
        points = sorted(random.Random(7).sample(points, sample))
    for cut in points:
        chip, _ = _cut_run(old, new, app, path, cut)
        assert chip.cuts == 1, f"cut {cut} never happened"
        assert chip.running in (parse_image(old).digest, plain), f"cut at op {cut}: the device runs nothing valid"
        if chip.running == plain:  # a half-decrypted primary would not have passed the digest check
            primary = chip.flash.read(F407.layout.primary[0] + 0x200, len(app))
            assert primary == app
        update(chip, third)
        assert chip.running == _digest_of_plain(third, key), f"cut at op {cut}: the next update did not take"
        assert info(chip).slot(0).state is SlotState.CONFIRMED
        assert third_app[0x40:0x80] not in _region(chip, F407.layout.secondary)


def test_a_power_cut_during_an_encrypted_update(enc_keys: dict[str, tuple[Path, EncryptionPrivateKey]]) -> None:
    """A seeded sample of cut points over transfer + swap (all of them in the soak run): the device runs the
    old image or the decrypted new one, never anything else, the secondary never holds plaintext, and the
    next update takes -- a swap resumed after a cut decrypts and encrypts with the keys stored before it
    began."""
    _sweep(enc_keys, sample=12)


@pytest.mark.soak
def test_a_power_cut_at_every_flash_operation_of_an_encrypted_update(
    enc_keys: dict[str, tuple[Path, EncryptionPrivateKey]],
) -> None:
    _sweep(enc_keys, sample=None)


def _refused(chip: Chip, image: bytes) -> DeviceError:
    transfer(chip, image)
    with pytest.raises(DeviceError) as err:
        command(chip, "verify", 1)
    with pytest.raises(DeviceError):
        command(chip, "activate", False)
    return err.value


@pytest.mark.parametrize("device_key", [None, "other", "ecies-p256"])
def test_a_device_without_the_matching_key_refuses_an_encrypted_image(
    device_key: str | None, enc_keys: dict[str, tuple[Path, EncryptionPrivateKey]]
) -> None:
    """No key, another device's X25519 key, or a key of another kind: NO_DECRYPT_KEY, the image never made
    pending, the primary untouched."""
    old, _ = _image("1.0.0", 1)
    new, _ = _image("1.1.0", 2, encrypt_key=enc_keys["ecies-x25519"][1])
    chip = Chip(primary=old, enc_key=enc_keys[device_key][0] if device_key else None)
    before = _region(chip, F407.layout.primary)
    err = _refused(chip, new)
    assert err.status == Status.NO_DECRYPT_KEY
    assert "encrypted for a key this device does not hold" in str(err)
    assert info(chip).slot(1).state is SlotState.EMPTY  # nothing it can read: not a valid image to it
    command(chip, "reboot")
    chip.settle()
    assert chip.running == parse_image(old).digest
    assert _region(chip, F407.layout.primary) == before


def test_a_pending_encrypted_image_the_device_cannot_decrypt_is_erased_at_boot(
    enc_keys: dict[str, tuple[Path, EncryptionPrivateKey]],
) -> None:
    """Padded with a test trailer (imgtool --pad --test), the image is pending as soon as it lands: the
    bootloader removes it, as MCUboot removes an image it cannot decrypt, and boots the old one."""
    old, _ = _image("1.0.0", 1)
    size = F407.layout.secondary[1]
    new, _ = _image("1.1.0", 2, encrypt_key=enc_keys["ecies-x25519"][1], pad=True, test=True, slot_size=size)
    chip = Chip(primary=old)
    before = _region(chip, F407.layout.primary)
    transfer(chip, new)
    command(chip, "reboot")
    chip.settle()
    assert chip.running == parse_image(old).digest
    assert _region(chip, F407.layout.primary) == before
    assert chip.flash.is_erased(*F407.layout.secondary)
    assert any("no-decrypt-key" in m for m in chip.personality.bootloader.messages)  # type: ignore[union-attr]


def test_the_device_keeps_its_key_across_runs(enc_keys: dict[str, tuple[Path, EncryptionPrivateKey]]) -> None:
    """The key is provisioned once (--enc-key) and kept in the device's persisted state."""
    path, key = enc_keys["ecies-p256"]
    old, _ = _image("1.0.0", 1)
    new, _ = _image("1.1.0", 2, encrypt_key=key)
    first = Chip(primary=old, enc_key=path)
    again = Chip(flash_data=first.flash.data, state=first.ctx.state)  # the same folder, no --enc-key
    update(again, new)
    assert again.running == _digest_of_plain(new, key)
    caps = info(again).capabilities
    assert caps is not None and caps.encryption == {"ecies-p256"}


def test_info_lists_what_the_device_verifies_and_decrypts(
    enc_keys: dict[str, tuple[Path, EncryptionPrivateKey]],
) -> None:
    caps = info(Chip(enc_key=enc_keys["ecies-x25519"][0])).capabilities
    assert caps is not None
    assert caps.signatures == {"ed25519", "ed25519-pure"}  # the dev key's type
    assert caps.digests == {"sha256", "sha512"}
    assert caps.encryption == {"ecies-x25519", "ecies-x25519-sha512"}
    assert caps.aes_bits == {128, 256}
    assert not caps.decompress
    none = info(Chip()).capabilities
    assert none is not None and not none.encryption and not none.aes_bits


@pytest.mark.parametrize(
    ("deps", "refused"),
    [
        ([(1, "1.0.0")], "no image 1"),  # a single-image device has image 0 only
        ([(0, "1.2.0")], "would be 1.1.0"),  # image 0 after the update is this image, 1.1.0
        ([(0, "1.1.0+7")], None),  # the build number is not compared (MCUboot's default)
        ([(0, "1.0.5")], None),
    ],
)
def test_dependencies_are_checked_before_an_image_may_run(deps: list[tuple[int, str]], refused: str | None) -> None:
    old = make_image(version="1.0.0", counter=1)
    new, _ = _image("1.1.0", 2, dependencies=deps)
    chip = Chip(primary=old)
    if refused is None:
        update(chip, new)
        assert chip.running == parse_image(new).digest
        return
    err = _refused(chip, new)
    assert err.status == Status.DEPENDENCY
    boot = chip.personality.bootloader
    assert boot is not None
    with pytest.raises(Exception, match=refused):
        boot.validate(boot.secondary)
    command(chip, "reboot")
    chip.settle()
    assert chip.running == parse_image(old).digest


def test_the_plaintext_digest_is_what_the_host_expects_after_the_swap(
    enc_keys: dict[str, tuple[Path, EncryptionPrivateKey]],
) -> None:
    """The flow checks the device came back with the new image by digest: an encrypted file's digest TLV is
    the plaintext's, which the device reports."""
    from protocol.flow import image_digests

    _, key = enc_keys["ecies-x25519"]
    new, _ = _image("1.1.0", 2, encrypt_key=key)
    assert _digest_of_plain(new, key) in image_digests(new)
    assert hashlib.sha256(new).digest() in image_digests(new)


@pytest.mark.parametrize("compression", ["lzma2", "lzma2armthumb"])
def test_a_compressed_image_is_refused_by_the_swapping_bootloader(compression: str) -> None:
    """MCUboot decompresses only in overwrite-only mode: this swapping bootloader answers COMPRESSED, and a
    compressed image left pending is removed at boot, as MCUboot removes an image it cannot install."""
    old = make_image(version="1.0.0", counter=1)
    app = _plain("1.1.0", 1000) * 6  # compressible: imgtool keeps the plain image when compressing does not pay
    image = sign_image(
        app,
        SIGNER,
        version="1.1.0",
        header_size=0x200,
        pad_header=True,
        align=F407.write_width,
        security_counter=2,
        hw_tag=HardwareTag(chip_id=F407.dev_id, board_id=1),
        compression=compression,
    )
    assert "COMPRESSED_LZMA2" in parse_image(image).header.flag_names
    chip = Chip(primary=old)
    err = _refused(chip, image)
    assert err.status == Status.COMPRESSED
    assert "compressed" in str(err)
    boot = chip.personality.bootloader
    assert boot is not None and boot.set_pending(permanent=False)  # as if a tool had marked it anyway
    command(chip, "reboot")
    chip.settle()
    assert chip.running == parse_image(old).digest
    assert chip.flash.is_erased(*F407.layout.secondary)


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("missing", "encryption key not found"),
        ("public", "is a public key: the device decrypts with the private key"),
        ("signing", "cannot wrap an image key"),
        ("garbage", "not a readable encryption key"),
    ],
)
def test_a_bad_enc_key_is_refused_when_the_emulator_starts(
    which: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from protocol.cli import main

    path = tmp_path / "enc.pem"
    if which == "public":
        public = x25519.X25519PrivateKey.generate().public_key()
        path.write_bytes(
            public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
    elif which == "signing":
        path.write_bytes(DEV_KEY.read_bytes())
    elif which == "garbage":
        path.write_bytes(b"not a key")
    assert main(["emulate", "--state", str(tmp_path / "dev"), "--enc-key", str(path)]) == 1
    err = capsys.readouterr().err
    assert "stm32ota: error:" in err and message in err, err
    assert "Traceback" not in err


def test_info_text_names_the_capabilities_or_says_an_old_device_does_not() -> None:
    from protocol.cli.update_commands import _format_info, info_to_json

    text = _format_info(info(Chip()))
    assert "signatures   ed25519, ed25519-pure; digests SHA256, SHA512" in text
    assert "encryption   none: the device decrypts no image; compressed images refused" in text
    old = dataclasses.replace(info(Chip()), protocol_version=0x0101, capabilities=None)
    assert "not reported (a protocol 1.0/1.1 bootloader)" in _format_info(old)
    assert info_to_json(old)["capabilities"] is None


def test_a_running_encrypted_image_whose_key_the_device_lost_is_not_swapped_out(
    enc_keys: dict[str, tuple[Path, EncryptionPrivateKey]],
) -> None:
    """Provisioned anew with another key (``--enc-key`` replaces the kept one), the device cannot encrypt its
    running image again: it does not swap (its plaintext would land in the secondary slot) and keeps running."""
    path, key = enc_keys["ecies-x25519"]
    old, _ = _image("1.0.0", 1)
    new, app = _image("1.1.0", 2, encrypt_key=key)
    first = Chip(primary=old, enc_key=path)
    update(first, new)
    assert first.running == _digest_of_plain(new, key)
    chip = Chip(flash_data=first.flash.data, state=first.ctx.state, enc_key=enc_keys["other"][0])
    check = _watch_plaintext(chip, app)
    third, _ = _image("1.2.0", 3)
    transfer(chip, third)
    command(chip, "verify", 1)
    command(chip, "activate", False)
    command(chip, "reboot")
    chip.settle()
    assert chip.running == _digest_of_plain(new, key)
    boot = chip.personality.bootloader
    assert boot is not None and any("cannot unwrap its key: not swapping" in m for m in boot.messages)
    check()
