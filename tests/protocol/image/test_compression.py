"""LZMA2-compressed images: the plain image inside is checked too; broken streams and TLVs are typed errors."""

from __future__ import annotations

import hashlib
import lzma
import struct

import pytest

from protocol.image import (
    BadSignatureError,
    BadTlvError,
    DigestMismatchError,
    MissingTlvError,
    PrivateKey,
    TlvType,
    describe_image,
    key_hash,
    parse_image,
    sign_image,
    verify_image,
)
from protocol.image.mcuboot import IMAGE_F_COMPRESSED_LZMA2, ImageHeader, ImageVersion, Tlv, assemble_tlv_area

HEADER = 0x200
_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9, "dict_size": 131072, "lp": 1, "lc": 3}]
_LZMA2_HEADER = bytes([10, (2 * 5 + 1) * 9 + 3])  # dictionary 128 KiB; pb=2, lp=1, lc=3 (imgtool's choice)


def _compressed(
    fw: bytes,
    key: PrivateKey,
    *,
    decomp_sha: bytes | None = None,
    decomp_sig: bytes | None = None,
    size: int | None = None,
    stream: bytes | None = None,
    drop: int | None = None,
) -> bytes:
    """A compressed image built as imgtool builds one (the outer signature always valid)."""
    plain = parse_image(sign_image(fw, key, version="1.2.3", header_size=HEADER, pad_header=True))
    payload = _LZMA2_HEADER + (stream if stream is not None else lzma.compress(fw, lzma.FORMAT_RAW, filters=_FILTERS))
    protected = [
        Tlv(type=TlvType.DECOMP_SIZE, value=struct.pack("<I", len(fw) if size is None else size), protected=True),
        Tlv(type=TlvType.DECOMP_SHA, value=decomp_sha or plain.digest, protected=True),
        Tlv(type=TlvType.DECOMP_SIGNATURE, value=decomp_sig or plain.tlvs[-1].value, protected=True),
    ]
    protected = [t for t in protected if t.type != drop]
    area = assemble_tlv_area(protected, protected=True)
    header = ImageHeader(
        load_addr=0,
        header_size=HEADER,
        protected_tlv_size=len(area),
        image_size=len(payload),
        flags=IMAGE_F_COMPRESSED_LZMA2,
        version=ImageVersion.parse("1.2.3"),
    )
    hashed = header.pack() + b"\xff" * (HEADER - 32) + payload + area
    digest = hashlib.sha256(hashed).digest()
    sig = key.sign(digest)  # type: ignore[call-arg]
    tlvs = [Tlv(type=TlvType.SHA256, value=digest), Tlv(type=TlvType.KEYHASH, value=key_hash(key))]
    tlvs.append(Tlv(type=TlvType.ED25519, value=sig))
    return hashed + assemble_tlv_area(tlvs, protected=False)


def test_good_compressed_image(ed_key: PrivateKey, fw_110: bytes) -> None:
    data = _compressed(fw_110, ed_key)
    verified = verify_image(data, keys=[ed_key.public_key()])
    assert verified.decompressed is not None
    assert verified.decompressed.payload == fw_110
    info = describe_image(parse_image(data))
    assert info["compression"]["decompressed_digest_ok"] is True
    assert info["compression"]["decompressed_size"] == len(fw_110)


def test_wrong_decomp_sha(ed_key: PrivateKey, fw_110: bytes) -> None:
    data = _compressed(fw_110, ed_key, decomp_sha=bytes(32))
    with pytest.raises(DigestMismatchError, match="decompressed"):
        verify_image(data, keys=[ed_key.public_key()])
    assert describe_image(parse_image(data))["compression"]["decompressed_digest_ok"] is False


def test_wrong_decomp_signature(ed_key: PrivateKey, fw_110: bytes) -> None:
    data = _compressed(fw_110, ed_key, decomp_sig=bytes(64))
    with pytest.raises(BadSignatureError, match="DECOMP_SIGNATURE"):
        verify_image(data, keys=[ed_key.public_key()])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"stream": b"\x00garbage that is no lzma2 stream"}, BadTlvError, "decompress"),
        ({"size": 10}, BadTlvError, "DECOMP_SIZE"),
        ({"size": 1 << 30}, BadTlvError, "DECOMP_SIZE"),
        ({"drop": TlvType.DECOMP_SHA}, MissingTlvError, "DECOMP_SHA"),
        ({"drop": TlvType.DECOMP_SIZE}, MissingTlvError, "DECOMP_SIZE"),
    ],
    ids=["bad-stream", "size-short", "size-huge", "no-sha", "no-size"],
)
def test_broken_compressed_images(
    ed_key: PrivateKey, fw_110: bytes, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    data = _compressed(fw_110, ed_key, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(error, match=match):
        verify_image(data, keys=[ed_key.public_key()])
    comp = describe_image(parse_image(data))["compression"]  # inspect says why, never raises
    assert comp["decompressed_digest"] is None and comp["not_computed"]
