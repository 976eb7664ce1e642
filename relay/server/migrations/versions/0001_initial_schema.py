"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-12-02 01:12:05.740478
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_admin_tokens_token_hash")),
    )
    op.create_table(
        "gateways",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateways")),
        sa.UniqueConstraint("tenant", "name", name=op.f("uq_gateways_tenant")),
    )
    op.create_table(
        "releases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("sha1", sa.String(length=40), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=False),
        sa.Column("chip_id", sa.Integer(), nullable=True),
        sa.Column("board_id", sa.Integer(), nullable=True),
        sa.Column("security_counter", sa.BigInteger(), nullable=True),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("signature_type", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_releases")),
        sa.UniqueConstraint("tenant", "version", name=op.f("uq_releases_tenant")),
    )
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_releases_sha256"), ["sha256"], unique=False)

    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("controller_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("gateway_id", sa.Integer(), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("chip_id", sa.Integer(), nullable=True),
        sa.Column("board_id", sa.Integer(), nullable=True),
        sa.Column("running_version", sa.String(length=64), nullable=True),
        sa.Column("installed_action_id", sa.Integer(), nullable=True),
        sa.Column("request_attributes", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["gateway_id"], ["gateways.id"], name=op.f("fk_devices_gateway_id_gateways"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("tenant", "controller_id", name=op.f("uq_devices_tenant")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_devices_token_hash")),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_gateway_id"), ["gateway_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "gateway_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gateway_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.Column("can_register", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["gateway_id"], ["gateways.id"], name=op.f("fk_gateway_tokens_gateway_id_gateways"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_gateway_tokens_token_hash")),
    )
    with op.batch_alter_table("gateway_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gateway_tokens_gateway_id"), ["gateway_id"], unique=False)

    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("pause_reason", sa.Text(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("download_only", sa.Boolean(), nullable=False),
        sa.Column("success_threshold", sa.Integer(), nullable=False),
        sa.Column("error_threshold_count", sa.Integer(), nullable=True),
        sa.Column("error_threshold_percent", sa.Integer(), nullable=True),
        sa.Column("maintenance", sa.JSON(), nullable=True),
        sa.Column("filter", sa.JSON(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["release_id"], ["releases.id"], name=op.f("fk_rollouts_release_id_releases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollouts")),
    )
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rollouts_release_id"), ["release_id"], unique=False)

    op.create_table(
        "device_logs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=True),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("device_time", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_device_logs_device_id_devices"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_logs")),
    )
    with op.batch_alter_table("device_logs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_logs_device_id"), ["device_id"], unique=False)

    op.create_table(
        "rollout_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_baseline", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rollout_id"], ["rollouts.id"], name=op.f("fk_rollout_groups_rollout_id_rollouts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_groups")),
        sa.UniqueConstraint("rollout_id", "position", name=op.f("uq_rollout_groups_rollout_id")),
    )
    with op.batch_alter_table("rollout_groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rollout_groups_rollout_id"), ["rollout_id"], unique=False)

    op.create_table(
        "actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("rollout_id", sa.Integer(), nullable=True),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("download_only", sa.Boolean(), nullable=False),
        sa.Column("maintenance", sa.JSON(), nullable=True),
        sa.Column("progress_cnt", sa.Integer(), nullable=True),
        sa.Column("progress_of", sa.Integer(), nullable=True),
        sa.Column("last_code", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_actions_device_id_devices"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["group_id"], ["rollout_groups.id"], name=op.f("fk_actions_group_id_rollout_groups")),
        sa.ForeignKeyConstraint(["release_id"], ["releases.id"], name=op.f("fk_actions_release_id_releases")),
        sa.ForeignKeyConstraint(["rollout_id"], ["rollouts.id"], name=op.f("fk_actions_rollout_id_rollouts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actions")),
    )
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.create_index("ix_actions_device_active", ["device_id", "active"], unique=False)
        batch_op.create_index(batch_op.f("ix_actions_group_id"), ["group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_actions_release_id"), ["release_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_actions_rollout_id"), ["rollout_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_actions_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "rollout_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=True),
        sa.Column("skipped", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_rollout_members_device_id_devices"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["rollout_groups.id"],
            name=op.f("fk_rollout_members_group_id_rollout_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_members")),
        sa.UniqueConstraint("group_id", "device_id", name=op.f("uq_rollout_members_group_id")),
    )
    with op.batch_alter_table("rollout_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rollout_members_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rollout_members_group_id"), ["group_id"], unique=False)

    op.create_table(
        "action_status",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("execution", sa.String(length=16), nullable=True),
        sa.Column("code", sa.Integer(), nullable=True),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_id"], ["actions.id"], name=op.f("fk_action_status_action_id_actions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_status")),
    )
    with op.batch_alter_table("action_status", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_action_status_action_id"), ["action_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("action_status", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_action_status_action_id"))

    op.drop_table("action_status")
    with op.batch_alter_table("rollout_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rollout_members_group_id"))
        batch_op.drop_index(batch_op.f("ix_rollout_members_device_id"))

    op.drop_table("rollout_members")
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_actions_updated_at"))
        batch_op.drop_index(batch_op.f("ix_actions_rollout_id"))
        batch_op.drop_index(batch_op.f("ix_actions_release_id"))
        batch_op.drop_index(batch_op.f("ix_actions_group_id"))
        batch_op.drop_index("ix_actions_device_active")

    op.drop_table("actions")
    with op.batch_alter_table("rollout_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rollout_groups_rollout_id"))

    op.drop_table("rollout_groups")
    with op.batch_alter_table("device_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_logs_device_id"))

    op.drop_table("device_logs")
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rollouts_release_id"))

    op.drop_table("rollouts")
    with op.batch_alter_table("gateway_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gateway_tokens_gateway_id"))

    op.drop_table("gateway_tokens")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_updated_at"))
        batch_op.drop_index(batch_op.f("ix_devices_gateway_id"))

    op.drop_table("devices")
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_releases_sha256"))

    op.drop_table("releases")
    op.drop_table("gateways")
    op.drop_table("admin_tokens")
