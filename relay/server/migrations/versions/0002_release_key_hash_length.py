"""releases.key_hash holds a SHA-512 key hash

A release signed with a SHA-384 or SHA-512 digest carries a key hash of that length (96 or 128 hex digits);
the first schema allowed only SHA-256's 64.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.alter_column("key_hash", existing_type=sa.String(length=64), type_=sa.String(length=128))


def downgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.alter_column("key_hash", existing_type=sa.String(length=128), type_=sa.String(length=64))
