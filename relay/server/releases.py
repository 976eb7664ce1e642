"""Release uploads: read a signed MCUboot image, check it with :mod:`protocol.image`, store it.

The body is read with a size limit (413 past it, with nothing stored), then checked as MCUboot would: digest,
a signature by one of the configured trusted keys, a protected hardware tag.  Only then is it written to the
artifact store (atomically) and recorded; a cut upload, a bad image or a duplicate version leaves nothing.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.image import ImageError, ImageVersion, MissingTlvError, PublicKey, reason_of, verify_image

from .context import ServerContext
from .errors import http_error
from .models import Release
from .storage import remove_artifact, store_artifact

__all__ = ["ReleaseInfo", "inspect_image", "read_upload", "store_release"]

log = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
MULTIPART_OVERHEAD = 64 * 1024  # bytes a form may add around the image (boundaries, part headers)


@dataclass(frozen=True, kw_only=True)
class ReleaseInfo:
    version: str
    size: int
    sha256: str
    sha1: str
    md5: str
    chip_id: int | None
    board_id: int | None
    security_counter: int | None
    key_hash: str
    signature_type: str


async def read_upload(request: web.Request, limit: int) -> tuple[bytes, str]:
    """The image (at most ``limit`` bytes: 413 beyond; 400 when the client stops early) and the file name a
    multipart upload gave it (``""`` for a raw body).  The body is the image itself, or a
    ``multipart/form-data`` form with the image in the field ``file`` (as ``curl -F file=@app.bin``)."""
    too_big = http_error(
        web.HTTPRequestEntityTooLarge, "too-large", f"the image is larger than the configured limit of {limit} bytes"
    )
    multipart = request.content_type == "multipart/form-data"
    if request.content_length is not None and request.content_length > limit + (MULTIPART_OVERHEAD if multipart else 0):
        raise too_big
    body = bytearray()
    filename = ""
    try:
        if multipart:
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if isinstance(part, aiohttp.BodyPartReader) and part.name == "file":
                    filename = part.filename or ""
                    while chunk := await part.read_chunk(READ_CHUNK):
                        body += chunk
                        if len(body) > limit:
                            raise too_big
                    break
            else:
                raise http_error(web.HTTPBadRequest, "empty-upload", "the form has no field named 'file'")
        else:
            while chunk := await request.content.read(READ_CHUNK):
                body += chunk
                if len(body) > limit:
                    raise too_big
    except web.HTTPException:
        raise
    except (ConnectionError, aiohttp.ClientPayloadError, aiohttp.EofStream) as err:  # the upload was cut
        log.info("release upload cut after %d bytes: %s", len(body), err)
        raise http_error(web.HTTPBadRequest, "incomplete-upload", f"the upload was cut: {err}") from err
    except (ValueError, HttpProcessingError) as err:  # a malformed multipart body
        raise http_error(web.HTTPBadRequest, "bad-form", f"the multipart form is malformed: {err}") from err
    if not multipart and request.content_length is not None and len(body) != request.content_length:
        raise http_error(web.HTTPBadRequest, "incomplete-upload", "the upload ended before Content-Length bytes")
    if not body:
        raise http_error(web.HTTPBadRequest, "empty-upload", "the body is empty: send the signed image as the body")
    return bytes(body), filename


def version_text(version: ImageVersion) -> str:
    """``1.1.0``, or ``1.1.0+7`` when the build number is set (what DDI chunks and the CLI show)."""
    base = f"{version.major}.{version.minor}.{version.revision}"
    return f"{base}+{version.build}" if version.build else base


def inspect_image(data: bytes, keys: list[PublicKey]) -> ReleaseInfo:
    """What the server records of an image; raises :class:`ImageError` when it must be refused."""
    verified = verify_image(data, keys=keys)
    if verified.hw_tag is None:
        raise MissingTlvError(
            "missing-tlv: the image has no hardware tag, so the server cannot tell which boards may run it",
            hint="sign with --chip (stm32ota sign) or --custom-tlv 0xa0 (imgtool)",
        )
    return ReleaseInfo(
        version=version_text(verified.version),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        sha1=hashlib.sha1(data).hexdigest(),
        md5=hashlib.md5(data).hexdigest(),
        chip_id=verified.hw_tag.chip_id,
        board_id=verified.hw_tag.board_id,
        security_counter=verified.security_counter,
        key_hash=verified.key_hash.hex(),
        signature_type=verified.signature_type,
    )


def refuse(err: ImageError) -> web.HTTPException:
    hint = f" (hint: {err.hint})" if err.hint else ""
    return http_error(web.HTTPUnprocessableEntity, reason_of(err), f"{err}{hint}")


async def store_release(
    ctx: ServerContext, session: AsyncSession, tenant: str, data: bytes, *, name: str, filename: str, description: str
) -> Release:
    """Check ``data`` and record it as a release (the caller commits)."""
    if not ctx.trusted_keys:
        raise http_error(
            web.HTTPUnprocessableEntity,
            "unknown-key",
            "the server trusts no signing key, so it accepts no release: set trusted_keys in the config",
        )
    try:
        info = inspect_image(data, ctx.trusted_keys)
    except ImageError as err:
        raise refuse(err) from None
    existing = (
        await session.execute(select(Release.id).where(Release.tenant == tenant, Release.version == info.version))
    ).first()
    if existing is not None:
        raise http_error(web.HTTPConflict, "duplicate-version", f"release {info.version} already exists")
    shared = (await session.execute(select(Release.id).where(Release.sha256 == info.sha256))).first()
    store_artifact(ctx.settings.artifacts_dir, info.sha256, data)
    release = Release(
        tenant=tenant,
        name=name or f"firmware {info.version}",
        version=info.version,
        filename=filename or f"firmware-{info.version}.bin",
        size=info.size,
        sha256=info.sha256,
        sha1=info.sha1,
        md5=info.md5,
        chip_id=info.chip_id,
        board_id=info.board_id,
        security_counter=info.security_counter,
        key_hash=info.key_hash,
        signature_type=info.signature_type,
        description=description,
    )
    session.add(release)
    try:
        await session.flush()
    except IntegrityError:
        if shared is None:
            remove_artifact(ctx.settings.artifacts_dir, info.sha256)
        raise http_error(web.HTTPConflict, "duplicate-version", f"release {info.version} already exists") from None
    return release
