"""The rest of the legacy tables the sink writes (legacy §11.7), the GPT enrichment table (contract §5),
and instagram_account.post_metrics.

Every table has a real unique constraint on the key the sink upserts by. The two
activity logs are keyed by their natural key, so a retried or replayed request adds
no row. observed_at (``timestamp`` in the logs, their legacy column) orders
observations: an older one never overwrites a newer one.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE instagram_profile_insights (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            profile_id varchar NOT NULL UNIQUE,
            handle text,
            audience_country jsonb,
            audience_city jsonb,
            audience_gender_age jsonb,
            audience_locale jsonb,
            reached_audience_country jsonb,
            reached_audience_city jsonb,
            reached_audience_gender_age jsonb,
            engaged_audience_country jsonb,
            engaged_audience_city jsonb,
            engaged_audience_gender_age jsonb,
            source text,
            observed_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE instagram_gpt_enrichment (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            handle text NOT NULL UNIQUE,
            gender text,
            city text,
            state text,
            country text,
            categories jsonb,
            languages jsonb,
            topics jsonb,
            audience_gender_age jsonb,
            audience_city jsonb,
            row_data jsonb,
            source text,
            observed_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE youtube_account (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            channel_id text NOT NULL UNIQUE,
            description text,
            custom_url text,
            title text,
            thumbnails text,
            thumbnail text,
            username text,
            gplsuid text,
            country text,
            yt_category_id text,
            yt_category text,
            locale text,
            published_at timestamptz,
            is_subscriber_count_hidden boolean,
            subscribers bigint,
            uploads bigint,
            views bigint,
            shorts bigint,
            er12p double precision,
            uploads_playlist_id text,
            is_verified boolean,
            external_urls text,
            source text,
            observed_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE youtube_post (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            shortcode varchar NOT NULL UNIQUE,
            channel_id text,
            title text,
            description text,
            thumbnails text,
            thumbnail text,
            tags text,
            channel_title text,
            duration text,
            category_id text,
            category text,
            audio_language text,
            content_rating text,
            playlist_id text,
            privacy_status text,
            keywords text,
            post_type text,
            views bigint,
            likes bigint,
            comments bigint,
            favourites bigint,
            is_licensed boolean,
            published_at timestamptz,
            source text,
            observed_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX youtube_post_channel ON youtube_post (channel_id, published_at DESC);

        CREATE TABLE youtube_profile_insights (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            channel_id text NOT NULL UNIQUE,
            country jsonb,
            city jsonb,
            gender_age jsonb,
            source text,
            observed_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE "order" (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            platform_order_id text NOT NULL UNIQUE,
            status text,
            name text,
            landing_site text,
            utm_params text,
            store text,
            store_name text,
            platform text,
            order_data jsonb,
            source text,
            observed_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE post_activity_log (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            activity_type text NOT NULL,
            platform text NOT NULL,
            platform_post_id text NOT NULL,
            actor_profile_id text NOT NULL,
            comment_id text NOT NULL DEFAULT '',
            source text,
            dimensions jsonb,
            metrics jsonb,
            publish_time timestamptz,
            "timestamp" timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (platform, platform_post_id, activity_type, actor_profile_id, comment_id)
        );
        CREATE INDEX post_activity_log_actor ON post_activity_log (platform, actor_profile_id);

        CREATE TABLE profile_relationship_log (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            relationship_type text NOT NULL,
            platform text NOT NULL,
            source_profile_id text NOT NULL,
            target_profile_id text NOT NULL,
            source text,
            source_dimensions jsonb,
            source_metrics jsonb,
            target_dimensions jsonb,
            target_metrics jsonb,
            "timestamp" timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (platform, source_profile_id, target_profile_id, relationship_type)
        );
        CREATE INDEX profile_relationship_log_target ON profile_relationship_log (platform, target_profile_id);

        -- The legacy server's post_metrics (legacy §9), kept beside the avg_* columns drawn from it.
        ALTER TABLE instagram_account ADD COLUMN post_metrics jsonb;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE instagram_account DROP COLUMN post_metrics;
        DROP TABLE profile_relationship_log; DROP TABLE post_activity_log; DROP TABLE "order";
        DROP TABLE youtube_profile_insights; DROP TABLE youtube_post; DROP TABLE youtube_account;
        DROP TABLE instagram_gpt_enrichment; DROP TABLE instagram_profile_insights;
        """
    )
