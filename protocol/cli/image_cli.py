"""Image subcommands, named and optioned like imgtool's: keygen, getpub, sign, verify, inspect."""

from __future__ import annotations

import argparse
from typing import Any

_HANDLERS = "protocol.cli.image_commands"


def _int(text: str) -> int:
    """An integer in any base Python accepts (``0x200``, ``512``, ``0o1000``)."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer (use 0x for hex)") from None


KEY_TYPES = ("ed25519", "ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "x25519")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("keygen", help="generate a signing key (Ed25519, ECDSA P-256/P-384, RSA-2048/3072), PKCS#8 PEM")
    p.add_argument("-k", "--key", required=True, metavar="KEY.pem", help="file to write")
    p.add_argument("-t", "--type", required=True, choices=KEY_TYPES, help="key type")
    p.add_argument("--force", action="store_true", help="overwrite an existing key file")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_keygen")

    p = sub.add_parser("getpub", help="print the public key of a key file (C array, Rust, PEM or raw DER)")
    p.add_argument("-k", "--key", required=True, metavar="KEY.pem")
    p.add_argument(
        "-e",
        "--encoding",
        choices=("lang-c", "lang-rust", "pem", "raw"),
        default="lang-c",
        help="default lang-c",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_getpub")

    p = sub.add_parser("getpriv", help="print the encryption private key a bootloader embeds (C array)")
    p.add_argument("-k", "--key", required=True, metavar="KEY.pem")
    p.add_argument("--minimal", action="store_true", help="only what decryption needs (no public key/CRT values)")
    p.add_argument("-f", "--format", choices=("openssl", "pkcs8"), help="DER format (default: the key type's)")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_getpriv")

    p = sub.add_parser(
        "sign",
        help="make a signed MCUboot image (byte-identical to imgtool sign)",
        description="IN may be .bin, Intel HEX, S-record or ELF; OUT is the signed binary, or Intel HEX when"
        " its name ends in .hex (like imgtool).",
    )
    p.add_argument("-k", "--key", metavar="KEY.pem", help="private key (without it: unsigned, SHA-256 only)")
    p.add_argument("-v", "--version", required=True, help="image version maj.min.rev+build")
    p.add_argument("-H", "--header-size", type=_int, default=0x20, help="header size (default 0x20)")
    p.add_argument("--pad-header", action="store_true", help="prepend header-size erased bytes to IN")
    p.add_argument("-S", "--slot-size", type=_int, required=True, help="slot size in bytes")
    p.add_argument("--align", type=int, choices=(1, 2, 4, 8, 16, 32), default=1, help="flash write size")
    p.add_argument("--max-align", type=int, choices=(8, 16, 32), default=None, help="max flash alignment")
    p.add_argument("--pad", action="store_true", help="pad to the slot size and write the trailer")
    p.add_argument("--confirm", action="store_true", help="mark the image confirmed (implies --pad)")
    p.add_argument("--test", action="store_true", help="mark the image for a test boot (implies --pad)")
    p.add_argument("-s", "--security-counter", help="security counter: an integer or 'auto'")
    p.add_argument(
        "--custom-tlv",
        nargs=2,
        action="append",
        default=[],
        metavar=("TAG", "VALUE"),
        help="protected custom TLV; VALUE 0x-prefixed hex bytes or a string (repeatable)",
    )
    p.add_argument("--chip", metavar="DEV_ID", help="hardware tag: chip DEV_ID (0x413) or name (stm32f407)")
    p.add_argument("--board", type=_int, default=0, help="hardware tag: board id (default 0 = any board)")
    p.add_argument("--public-key-format", choices=("hash", "full"), default="hash", help="default hash")
    p.add_argument("-M", "--max-sectors", type=int, default=128, help="sectors in the swap status (128)")
    p.add_argument("--overwrite-only", action="store_true", help="trailer for overwrite-only upgrades")
    p.add_argument("-R", "--erased-val", choices=("0", "0xff"), default="0xff", help="erased flash value")
    p.add_argument("-L", "--load-addr", type=_int, default=0, help="RAM-load address (sets RAM_LOAD)")
    p.add_argument("-F", "--rom-fixed", type=_int, default=None, help="fixed ROM address (sets ROM_FIXED)")
    p.add_argument("--non-bootable", action="store_true", help="mark the image non-bootable")
    p.add_argument("--pad-sig", action="store_true", help="pad ECDSA signatures (72 bytes P-256, 103 P-384)")
    p.add_argument(
        "--sha",
        choices=("auto", "256", "384", "512"),
        default="auto",
        help="image digest (auto: the key's; Ed25519 also 512)",
    )
    p.add_argument(
        "-d",
        "--dependencies",
        metavar='"(ID, VERSION), ..."',
        help="DEPENDENCY TLVs: image ID must be at least VERSION",
    )
    p.add_argument("--boot-record", metavar="SW_TYPE", help="CBOR boot record TLV for this software role (<= 12 chars)")
    p.add_argument(
        "--vector-to-sign",
        choices=("payload", "digest"),
        help="write what an external signer signs (the hashed region or its digest) instead of the image",
    )
    p.add_argument("-E", "--encrypt", metavar="ENC_KEY.pem", help="encrypt for this X25519, P-256 or RSA-2048 key")
    p.add_argument("--encrypt-keylen", type=int, choices=(128, 256), default=128, help="AES key size (128)")
    p.add_argument("-c", "--clear", action="store_true", help="with -E: keep the payload plain (encrypted on swap)")
    p.add_argument("--save-enctlv", action="store_true", help="with -E: trailer room for the saved ENC TLV")
    p.add_argument("--hmac-sha", choices=("auto", "256", "512"), default="auto", help="ECIES HMAC (512: X25519)")
    p.add_argument(
        "--compression",
        choices=("disabled", "lzma2", "lzma2armthumb"),
        default="disabled",
        help="LZMA2-compress the payload as imgtool does (a swapping MCUboot refuses such images)",
    )
    p.add_argument("--pure", action="store_true", help="Ed25519 signs the image itself (SHA-512, SIG_PURE TLV)")
    p.add_argument("-x", "--hex-addr", type=_int, default=None, help="flash address of a .hex OUT (default: IN's)")
    p.add_argument("--input-format", choices=("bin", "hex", "srec", "elf"), help="default: from IN")
    p.add_argument("infile", metavar="IN")
    p.add_argument("outfile", metavar="OUT")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_sign")

    p = sub.add_parser(
        "verify",
        help="check an image: digest, key, signature (and chip tag, security counter); exit 0 only if valid",
    )
    p.add_argument("-k", "--key", action="append", default=[], metavar="KEY.pem", help="trusted key (repeatable)")
    p.add_argument("--chip", metavar="DEV_ID", help="require the hardware tag to name this chip")
    p.add_argument("--board", type=_int, default=None, help="require the tag to fit this board")
    p.add_argument("--min-security-counter", type=_int, default=None, help="reject lower security counters")
    p.add_argument(
        "--decrypt-key", metavar="ENC_KEY.pem", help="the device's encryption private key: check an encrypted image"
    )
    p.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    p.add_argument("image", metavar="IMAGE")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_verify")

    p = sub.add_parser("inspect", help="show an image: header, version, sizes, digest, TLVs, signature, key hash")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.add_argument("image", metavar="IMAGE")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_inspect")
