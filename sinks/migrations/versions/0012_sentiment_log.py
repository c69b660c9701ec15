"""Sentiment (issue Reports): ``sentiment_log``, one row per comment with the SENTIMENT model's latest verdict,
written by the sink from the ``sentiment_log`` topic; the sentiment collection report reads it by post.

Revision ID: 0012
Revises: 0013 (merged after the history and legacy-import migrations)
"""

from alembic import op

revision = "0012"
down_revision = "0013"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE sentiment_log (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            platform text NOT NULL,
            platform_post_id text,
            comment_id text NOT NULL,
            comment text,
            sentiment text,
            score double precision,
            dimensions jsonb,
            metrics jsonb,
            source text,
            "timestamp" timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (platform, comment_id)
        );
        CREATE INDEX sentiment_log_post ON sentiment_log (platform, platform_post_id);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE sentiment_log")
