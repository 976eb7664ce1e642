"""Who is asking: DDI ``TargetToken`` / ``GatewayToken`` and admin ``Bearer`` tokens.

A ``TargetToken`` opens its own device only.  A ``GatewayToken`` opens only the devices registered through
its gateway (hawkBit's opens the whole tenant); asking for any other controllerId is 403.  A gateway token
with ``can_register`` creates an unknown controllerId as a *pending* device of its gateway, which an admin
accepts (``stm32ota device accept``) before it is offered anything.

Tokens are looked up by their SHA-256 (the only form stored) and compared with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .context import DevicePrincipal, ServerContext
from .errors import http_error
from .models import AdminToken, Device, GatewayToken
from .tokens import MAX_TOKEN_LENGTH, hash_token

__all__ = ["ROLES", "AdminPrincipal", "authenticate_admin", "authenticate_device", "authenticate_gateway"]

ROLES = ("read-only", "release-manager", "admin")
_SCHEMES = {name.lower(): name for name in ("TargetToken", "GatewayToken", "Bearer")}
_RANK = {role: rank for rank, role in enumerate(ROLES)}


@dataclass(frozen=True)
class AdminPrincipal:
    token_id: int
    name: str
    role: str

    def allows(self, role: str) -> bool:
        return _RANK[self.role] >= _RANK[role]


@dataclass(frozen=True)
class _GatewayCredential:
    token_id: int
    gateway_id: int
    can_register: bool


def _unauthorized(message: str, scheme: str) -> web.HTTPException:
    return http_error(web.HTTPUnauthorized, "unauthorized", message, headers={"WWW-Authenticate": scheme})


def _forbidden(message: str) -> web.HTTPException:
    return http_error(web.HTTPForbidden, "forbidden", message)


def _scheme_and_token(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization")
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    scheme = _SCHEMES.get(scheme.lower(), scheme)  # auth schemes are case-insensitive (RFC 9110)
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return scheme, ""
    return scheme, token


async def _gateway_credential(ctx: ServerContext, token: str) -> _GatewayCredential | None:
    digest = hash_token(token)
    cached = ctx.cred_cache.get(b"g" + digest)
    if isinstance(cached, _GatewayCredential):
        return cached
    async with ctx.sessions() as session:
        row = (
            await session.execute(select(GatewayToken).where(GatewayToken.token_hash == digest))
        ).scalar_one_or_none()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, digest):
        return None
    cred = _GatewayCredential(token_id=row.id, gateway_id=row.gateway_id, can_register=row.can_register)
    ctx.cred_cache.put(b"g" + digest, cred)
    return cred


def _principal(device: Device, via_gateway: int | None = None) -> DevicePrincipal:
    return DevicePrincipal(
        device_id=device.id,
        tenant=device.tenant,
        controller_id=device.controller_id,
        state=device.state,
        gateway_id=device.gateway_id,
        via_gateway=via_gateway,
    )


async def authenticate_gateway(ctx: ServerContext, request: web.Request) -> int:
    """The gateway id a ``GatewayToken`` request belongs to (401 without a valid one)."""
    parsed = _scheme_and_token(request)
    if parsed is None or parsed[0] != "GatewayToken":
        raise _unauthorized("a GatewayToken is required", "GatewayToken")
    cred = await _gateway_credential(ctx, parsed[1]) if parsed[1] else None
    if cred is None:
        raise _unauthorized("the gateway token is unknown or revoked", "GatewayToken")
    return cred.gateway_id


async def authenticate_device(
    ctx: ServerContext, request: web.Request, tenant: str, controller_id: str, *, register: bool = False
) -> DevicePrincipal:
    """The device a DDI request may act for, or 401/403.  ``register``: a gateway may create it (the poll)."""
    parsed = _scheme_and_token(request)
    if parsed is None:
        raise _unauthorized(
            "authentication required: Authorization: TargetToken <token> or GatewayToken <token>", "TargetToken"
        )
    scheme, token = parsed
    if scheme == "TargetToken":
        if not token:
            raise _unauthorized("the target token is empty or too long", "TargetToken")
        digest = hash_token(token)
        cached = ctx.token_cache.get(b"t" + digest)
        if isinstance(cached, DevicePrincipal):
            principal = cached
        else:
            async with ctx.sessions() as session:
                device = (await session.execute(select(Device).where(Device.token_hash == digest))).scalar_one_or_none()
            if device is None or device.token_hash is None or not hmac.compare_digest(device.token_hash, digest):
                raise _unauthorized("the target token is unknown or revoked", "TargetToken")
            principal = _principal(device)
            ctx.cache_principal(b"t" + digest, principal)
        if principal.tenant != tenant or principal.controller_id != controller_id:
            raise _forbidden(f"this target token belongs to another device, not {controller_id!r}")
        if principal.state != "active":
            raise _forbidden(f"device {controller_id!r} is not accepted yet")
        return principal
    if scheme == "GatewayToken":
        cred = await _gateway_credential(ctx, token) if token else None
        if cred is None:
            raise _unauthorized("the gateway token is unknown or revoked", "GatewayToken")
        key = b"d" + tenant.encode() + b"/" + controller_id.encode()
        cached = ctx.token_cache.get(key)
        principal_or_none = cached if isinstance(cached, DevicePrincipal) else None
        if principal_or_none is None:
            async with ctx.sessions() as session:
                device = (
                    await session.execute(
                        select(Device).where(Device.tenant == tenant, Device.controller_id == controller_id)
                    )
                ).scalar_one_or_none()
            if device is None:
                if not (register and cred.can_register):
                    raise _forbidden(f"device {controller_id!r} is not registered through this gateway")
                device = await _self_register(ctx, tenant, controller_id, cred.gateway_id)
            principal_or_none = _principal(device)
            ctx.cache_principal(key, principal_or_none)
        if principal_or_none.gateway_id != cred.gateway_id:
            raise _forbidden(f"device {controller_id!r} is outside this gateway token's scope")
        return DevicePrincipal(**{**principal_or_none.__dict__, "via_gateway": cred.gateway_id})
    raise _unauthorized(
        f"unsupported authorization scheme {scheme[:20]!r}: use TargetToken or GatewayToken", "TargetToken"
    )


async def _self_register(ctx: ServerContext, tenant: str, controller_id: str, gateway_id: int) -> Device:
    """A gateway's first poll for an unknown MCU: a pending device bound to that gateway."""
    try:
        async with ctx.sessions.begin() as session:
            device = Device(
                tenant=tenant,
                controller_id=controller_id,
                gateway_id=gateway_id,
                state="pending",
                attributes={},
                tags=[],
            )
            session.add(device)
    except IntegrityError:  # another process registered it at the same moment
        async with ctx.sessions() as session:
            device = (
                await session.execute(
                    select(Device).where(Device.tenant == tenant, Device.controller_id == controller_id)
                )
            ).scalar_one()
    return device


async def authenticate_admin(ctx: ServerContext, request: web.Request, role: str) -> AdminPrincipal:
    """The admin token's principal if it has at least ``role``; 401 without a valid token, 403 without the role."""
    parsed = _scheme_and_token(request)
    if parsed is None or parsed[0] != "Bearer" or not parsed[1]:
        raise _unauthorized("an admin token is required: Authorization: Bearer <token>", "Bearer")
    digest = hash_token(parsed[1])
    cached = ctx.cred_cache.get(b"a" + digest)
    if isinstance(cached, AdminPrincipal):
        principal = cached
    else:
        async with ctx.sessions() as session:
            row = (
                await session.execute(select(AdminToken).where(AdminToken.token_hash == digest))
            ).scalar_one_or_none()
        if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, digest):
            raise _unauthorized("the admin token is unknown or revoked", "Bearer")
        principal = AdminPrincipal(row.id, row.name, row.role)
        ctx.cred_cache.put(b"a" + digest, principal)
    if not principal.allows(role):
        raise _forbidden(f"this token has the role {principal.role!r}; this request needs {role!r}")
    return principal
