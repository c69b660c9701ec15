"""Graph views: the ``views`` metric of Instagram's media insights, Meta's successor to impressions
(feed posts, stories) and plays (reels) since 2025-04-21.

It gets a column of its own on ``instagram_post``, next to the plays and impressions it succeeds:
the legacy ``views`` column holds the public view count the scrapers read (``view_count``), a
different number. Nullable and without a default, so adding it does not rewrite the table.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.execute("ALTER TABLE instagram_post ADD COLUMN insight_views bigint")


def downgrade() -> None:
    op.execute("ALTER TABLE instagram_post DROP COLUMN insight_views")
