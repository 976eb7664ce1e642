"""Build SWUpdate ``.swu`` bundles for tests: a cpio ``newc`` archive whose first member is ``sw-description``.

gooseBit serves nothing but such bundles: on upload it reads the first cpio header, insists that the member is
``sw-description`` (libconfig syntax), and takes ``software.version`` and the ``hardware-compatibility`` lists
from it.  SWUpdate itself writes the ``070702`` (CRC) variant; gooseBit accepts any ``0707`` magic, and the
gateway issue names ``newc`` (``070701``), so that is what is written here.

The layout of ``sw-description`` follows SWUpdate's documentation: ``software = { version = "..."; <board> =
{ hardware-compatibility = ["<revision>"]; images: ( { filename = "..."; type = "raw"; sha256 = "..."; } ); };
};``.  The board/revision pair is what gooseBit matches against the device's ``hw_boardname``/``hw_revision``
configData.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

NEWC_MAGIC = b"070701"
TRAILER = "TRAILER!!!"
_REGULAR_FILE = 0o100644


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


def cpio_newc_member(name: str, data: bytes, *, ino: int, mtime: int = 0) -> bytes:
    """One ``newc`` member: the 110-byte ASCII header, the NUL-terminated name and the data, each 4-aligned."""
    encoded = name.encode() + b"\0"
    fields = (
        ino,
        _REGULAR_FILE if name != TRAILER else 0,
        0,  # uid
        0,  # gid
        1,  # nlink
        mtime,
        len(data),
        0,  # devmajor
        0,  # devminor
        0,  # rdevmajor
        0,  # rdevminor
        len(encoded),
        0,  # check (0 in newc)
    )
    header = NEWC_MAGIC + b"".join(b"%08X" % value for value in fields)
    return header + encoded + _pad4(len(header) + len(encoded)) + data + _pad4(len(data))


def cpio_newc(members: Mapping[str, bytes]) -> bytes:
    """A whole archive, members in the mapping's order, closed by the ``TRAILER!!!`` member."""
    parts = [cpio_newc_member(name, data, ino=index + 1) for index, (name, data) in enumerate(members.items())]
    parts.append(cpio_newc_member(TRAILER, b"", ino=0))
    return b"".join(parts)


def sw_description(version: str, board: str, revision: str, images: Mapping[str, bytes]) -> str:
    """A libconfig ``sw-description`` that names each image with its SHA-256 (as SWUpdate checks it)."""
    entries = ",\n".join(
        f'        {{ filename = "{name}"; type = "raw"; sha256 = "{hashlib.sha256(data).hexdigest()}"; }}'
        for name, data in images.items()
    )
    return (
        "software =\n{\n"
        f'    version = "{version}";\n'
        f"    {board} = {{\n"
        f'        hardware-compatibility = [ "{revision}" ];\n'
        f"        images: (\n{entries}\n        );\n"
        "    };\n};\n"
    )


def build_swu(
    version: str,
    images: Mapping[str, bytes],
    *,
    board: str = "stm32-gw",
    revision: str = "1.0",
) -> bytes:
    """A ``.swu`` bundle holding ``images`` for hardware ``board``/``revision`` at software ``version``."""
    description = sw_description(version, board, revision, images).encode()
    return cpio_newc({"sw-description": description, **images})
