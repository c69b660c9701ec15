"""History the CSV exports read (issue *Reports*): one row per YouTube channel per day and one per video per
day, the day's last observation winning (null-safe, newer-wins, as every entity table).

The legacy engine kept every event in ClickHouse and an old monthly-stats table; the daily and monthly
stats need only each day's lifetime counts, so that is all Beat keeps, bounded by
``BEAT_HISTORY_RETENTION_DAYS`` (the reconciler prunes older days).

Revision ID: 0011
Revises: 0009
"""

from alembic import op

revision = "0011"
down_revision = "0009"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE youtube_account_daily (
            channel_id text NOT NULL,
            day date NOT NULL,
            subscribers bigint,
            views bigint,
            uploads bigint,
            source text,
            observed_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (channel_id, day)
        );
        CREATE TABLE youtube_post_daily (
            shortcode text NOT NULL,
            day date NOT NULL,
            channel_id text,
            views bigint,
            likes bigint,
            comments bigint,
            source text,
            observed_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (shortcode, day)
        );
        -- Retention deletes by day across every channel and video.
        CREATE INDEX youtube_account_daily_day ON youtube_account_daily (day);
        CREATE INDEX youtube_post_daily_day ON youtube_post_daily (day);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE youtube_post_daily; DROP TABLE youtube_account_daily;")
