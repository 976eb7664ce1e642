"""SWUpdate ``.swu`` bundles: a cpio ``newc`` archive whose first member is ``sw-description``.

gooseBit serves nothing else, and Linux gateways already build them.  The gateway needs only the MCU image
inside: :func:`mcu_image` reads the members (refusing names that could leave a folder), checks every image
against the SHA-256 that ``sw-description`` gives it, and returns the one that is an MCUboot image (or the one
named).  Pure: bytes in, bytes out.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .errors import ArtifactError

__all__ = ["BundleImage", "is_swu", "mcu_image", "read_members"]

_HEADER = 110
_MAGICS = (b"070701", b"070702")  # newc, and newc with a checksum (what SWUpdate writes)
_TRAILER = "TRAILER!!!"
_DESCRIPTION = "sw-description"
_MCUBOOT_MAGIC = b"\x3d\xb8\xf3\x96"
_IMAGE_BLOCK = re.compile(r"\{([^{}]*)\}")
_FIELD = re.compile(r'\b(filename|sha256)\s*[=:]\s*"([^"]*)"')


@dataclass(frozen=True)
class BundleImage:
    name: str
    data: bytes
    version: str | None  # software.version from sw-description


def is_swu(data: bytes) -> bool:
    return data[:6] in _MAGICS


def _safe_name(name: str) -> str:
    if not name or "\0" in name or name.startswith("/") or "\\" in name:
        raise ArtifactError(f"bundle member name {name!r} is not a plain relative name")
    parts = name.split("/")
    if any(part in ("..", "") for part in parts):
        raise ArtifactError(f"bundle member name {name!r} leaves the bundle (path traversal)")
    return name.removeprefix("./")


def read_members(data: bytes) -> list[tuple[str, bytes]]:
    """Every member of a ``newc`` archive, in order, up to the trailer."""
    members: list[tuple[str, bytes]] = []
    offset = 0
    while True:
        header = data[offset : offset + _HEADER]
        if len(header) < _HEADER or header[:6] not in _MAGICS:
            raise ArtifactError(f"not a cpio newc archive at byte {offset} (a .swu is one)")
        try:
            size = int(header[54:62], 16)
            name_size = int(header[94:102], 16)
        except ValueError as err:
            raise ArtifactError(f"malformed cpio header at byte {offset}") from err
        name_start = offset + _HEADER
        raw_name = data[name_start : name_start + name_size]
        if name_size == 0 or len(raw_name) != name_size or raw_name[-1:] != b"\0":
            raise ArtifactError(f"malformed cpio member name at byte {offset}")
        name = raw_name[:-1].decode("utf-8", "replace")
        data_start = name_start + name_size + (-(_HEADER + name_size) % 4)
        if name == _TRAILER:
            return members
        body = data[data_start : data_start + size]
        if len(body) != size:
            raise ArtifactError(f"bundle member {name!r} is cut short ({len(body)} of {size} bytes)")
        members.append((_safe_name(name), body))
        offset = data_start + size + (-size % 4)


def _description(text: str) -> tuple[str | None, dict[str, str]]:
    version = re.search(r'\bversion\s*[=:]\s*"([^"]*)"', text)
    hashes: dict[str, str] = {}
    for block in _IMAGE_BLOCK.findall(text):
        fields = dict(_FIELD.findall(block))
        if "filename" in fields:
            hashes[_safe_name(fields["filename"])] = fields.get("sha256", "").lower()
    return (version.group(1) if version else None), hashes


def mcu_image(data: bytes, *, name: str | None = None) -> BundleImage:
    """The MCU image in bundle ``data``: the member ``name``, else the only MCUboot image it holds."""
    members = read_members(data)
    if not members or members[0][0] != _DESCRIPTION:
        raise ArtifactError("the bundle does not start with sw-description")
    version, hashes = _description(members[0][1].decode("utf-8", "replace"))
    files = dict(members[1:])
    for filename, sha256 in hashes.items():
        if filename not in files:
            raise ArtifactError(f"sw-description names {filename!r}, which the bundle does not hold")
        if not sha256:
            raise ArtifactError(f"sw-description gives {filename!r} no sha256")
        if hashlib.sha256(files[filename]).hexdigest() != sha256:
            raise ArtifactError(f"{filename!r} does not match the sha256 in sw-description (tampered?)")
    if name is not None:
        if name not in hashes:
            raise ArtifactError(f"the bundle's sw-description names no image {name!r}")
        return BundleImage(name=name, data=files[name], version=version)
    candidates = [n for n in hashes if files[n][:4] == _MCUBOOT_MAGIC]
    if len(candidates) != 1:
        found = "no" if not candidates else f"{len(candidates)}"
        raise ArtifactError(
            f"the bundle holds {found} MCUboot images listed in sw-description",
            hint="name the MCU image with swu_image in the gateway config",
        )
    return BundleImage(name=candidates[0], data=files[candidates[0]], version=version)
