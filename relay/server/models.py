"""The server's tables (SQLAlchemy 2 declarative models).

The schema is created and upgraded only by Alembic (:mod:`relay.server.migrations`); these classes are the
source its revisions are generated from.  Every state the server keeps lives here, never only in one
process's memory, so several server processes can share one PostgreSQL database.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Action",
    "ActionStatus",
    "AdminToken",
    "Base",
    "Device",
    "DeviceLog",
    "Gateway",
    "GatewayToken",
    "Release",
    "Rollout",
    "RolloutGroup",
    "RolloutMember",
    "utcnow",
]

# Stable constraint names, so Alembic migrations are the same on SQLite and PostgreSQL.
_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Now, in UTC, timezone-aware (every timestamp the server stores)."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)
    type_annotation_map = {dt.datetime: DateTime(timezone=True), dict[str, Any]: JSON, list[Any]: JSON}


class AdminToken(Base):
    """A token for the admin REST API; ``role`` is ``read-only``, ``release-manager`` or ``admin``."""

    __tablename__ = "admin_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class Gateway(Base):
    """A field gateway: the devices it registers are the only ones its tokens open."""

    __tablename__ = "gateways"
    __table_args__ = (UniqueConstraint("tenant", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class GatewayToken(Base):
    """A ``GatewayToken`` credential, scoped to its gateway's devices; may self-register new ones."""

    __tablename__ = "gateway_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gateway_id: Mapped[int] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    label: Mapped[str] = mapped_column(String(128), default="")
    can_register: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class Device(Base):
    """One MCU (a DDI target).  ``state`` is ``active`` or ``pending`` (self-registered, awaiting an admin)."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("tenant", "controller_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    controller_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(128), default="")
    state: Mapped[str] = mapped_column(String(16), default="active")
    token_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True, default=None)
    gateway_id: Mapped[int | None] = mapped_column(
        ForeignKey("gateways.id", ondelete="SET NULL"), index=True, default=None
    )
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    chip_id: Mapped[int | None] = mapped_column(Integer, default=None)
    board_id: Mapped[int | None] = mapped_column(Integer, default=None)
    running_version: Mapped[str | None] = mapped_column(String(64), default=None)
    installed_action_id: Mapped[int | None] = mapped_column(Integer, default=None)
    request_attributes: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)
    """Bumped by every change but last-seen: the other processes' caches drop the device when they see it."""


class Release(Base):
    """A signed MCUboot image; the file lives in the artifact store under its SHA-256."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("tenant", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    sha1: Mapped[str] = mapped_column(String(40))
    md5: Mapped[str] = mapped_column(String(32))
    chip_id: Mapped[int | None] = mapped_column(Integer, default=None)
    board_id: Mapped[int | None] = mapped_column(Integer, default=None)
    security_counter: Mapped[int | None] = mapped_column(BigInteger, default=None)
    key_hash: Mapped[str] = mapped_column(String(128))  # a SHA-512 key hash is 128 hex digits
    signature_type: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class Rollout(Base):
    """A release to a set of devices, in groups.  ``status``: running, paused, finished, canceled."""

    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="running")
    pause_reason: Mapped[str] = mapped_column(Text, default="")
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    download_only: Mapped[bool] = mapped_column(Boolean, default=False)
    success_threshold: Mapped[int] = mapped_column(Integer, default=100)
    error_threshold_count: Mapped[int | None] = mapped_column(Integer, default=None)
    error_threshold_percent: Mapped[int | None] = mapped_column(Integer, default=None)
    maintenance: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    filter: Mapped[dict[str, Any]] = mapped_column(default=dict)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RolloutGroup(Base):
    """One stage of a rollout.  ``status``: scheduled, running, finished, canceled."""

    __tablename__ = "rollout_groups"
    __table_args__ = (UniqueConstraint("rollout_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    error_baseline: Mapped[int] = mapped_column(Integer, default=0)
    """Errors already counted when the rollout was last resumed: the thresholds apply to new ones."""


class RolloutMember(Base):
    """A device's place in a rollout group; ``skipped`` says why it was not offered the release."""

    __tablename__ = "rollout_members"
    __table_args__ = (UniqueConstraint("group_id", "device_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("rollout_groups.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    action_id: Mapped[int | None] = mapped_column(Integer, default=None)
    skipped: Mapped[str | None] = mapped_column(String(64), default=None)


class Action(Base):
    """A release assigned to a device.

    ``status`` (the hawkBit action state): scheduled, running, download, downloaded, warning, canceling,
    canceled, finished, error.  ``active`` is true until the action reaches a final state.
    """

    __tablename__ = "actions"
    __table_args__ = (Index("ix_actions_device_active", "device_id", "active"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"), index=True)
    rollout_id: Mapped[int | None] = mapped_column(ForeignKey("rollouts.id"), index=True, default=None)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("rollout_groups.id"), index=True, default=None)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    download_only: Mapped[bool] = mapped_column(Boolean, default=False)
    maintenance: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    progress_cnt: Mapped[int | None] = mapped_column(Integer, default=None)
    progress_of: Mapped[int | None] = mapped_column(Integer, default=None)
    last_code: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)


class ActionStatus(Base):
    """One entry of an action's history: a feedback message or a server-side change."""

    __tablename__ = "action_status"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    execution: Mapped[str | None] = mapped_column(String(16), default=None)
    code: Mapped[int | None] = mapped_column(Integer, default=None)
    messages: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DeviceLog(Base):
    """A device log line sent through the log endpoint (our extension)."""

    __tablename__ = "device_logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    action_id: Mapped[int | None] = mapped_column(Integer, default=None)
    level: Mapped[str] = mapped_column(String(16), default="info")
    message: Mapped[str] = mapped_column(Text)
    device_time: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
