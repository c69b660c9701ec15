"""The spine: request log and events, credentials, Instagram accounts and posts.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE scrape_request_log (
            id text PRIMARY KEY,
            flow text NOT NULL,
            platform text,
            params jsonb NOT NULL DEFAULT '{}'::jsonb,
            status text NOT NULL,
            attempt integer NOT NULL DEFAULT 1,
            source text,
            error_type text,
            error_message text,
            result jsonb,
            priority integer NOT NULL DEFAULT 1,
            retry_count integer NOT NULL DEFAULT 0,
            account_id text,
            idempotency_key text UNIQUE,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz,
            picked_at timestamptz,
            scraped_at timestamptz,
            status_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            enqueued boolean NOT NULL DEFAULT false,
            redrives integer NOT NULL DEFAULT 0,
            redriven_at timestamptz
        );
        CREATE INDEX scrape_request_log_flow_status ON scrape_request_log (flow, status);
        CREATE INDEX scrape_request_log_open ON scrape_request_log (status, status_at)
            WHERE status IN ('PENDING', 'PROCESSING');
        CREATE INDEX scrape_request_log_account ON scrape_request_log (account_id, created_at DESC);

        CREATE TABLE scrape_request_event (
            id bigserial PRIMARY KEY,
            request_id text NOT NULL,
            status text NOT NULL,
            attempt integer NOT NULL,
            at timestamptz NOT NULL,
            source text,
            error jsonb,
            result jsonb,
            UNIQUE (request_id, attempt, status)
        );

        CREATE TABLE credential (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            idempotency_key text NOT NULL UNIQUE,
            source text NOT NULL,
            credentials jsonb NOT NULL,
            handle text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            disabled_till timestamptz,
            enabled boolean NOT NULL DEFAULT true,
            data_access_expired boolean NOT NULL DEFAULT false,
            last_used_at timestamptz
        );
        CREATE INDEX credential_source ON credential (source, handle);

        CREATE TABLE instagram_account (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            profile_id varchar NOT NULL UNIQUE,
            handle text,
            full_name text,
            profile_type text,
            biography text,
            profile_pic_url text,
            category text,
            category_id text,
            fbid text,
            external_url text,
            followers bigint,
            following bigint,
            media_count bigint,
            is_business_or_creator boolean,
            is_creator boolean,
            is_in_gcc_collection boolean,
            is_private boolean,
            is_verified boolean,
            on_gcc boolean,
            avg_comments double precision,
            avg_engagement double precision,
            avg_impressions double precision,
            avg_likes double precision,
            avg_reach double precision,
            avg_reels_plays double precision,
            observed_at timestamptz,
            source text,
            created_at timestamptz NOT NULL DEFAULT now(),
            refreshed_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX instagram_account_handle ON instagram_account (handle);

        CREATE TABLE instagram_post (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            shortcode varchar NOT NULL UNIQUE,
            profile_id text,
            handle text,
            post_id text,
            post_type text,
            content_type text,
            caption text,
            display_url text,
            thumbnail_url text,
            keywords text,
            likes bigint,
            views bigint,
            plays bigint,
            comments bigint,
            reach bigint,
            saved bigint,
            shares bigint,
            impressions bigint,
            interactions bigint,
            taps_forward bigint,
            taps_back bigint,
            exits bigint,
            replies bigint,
            navigation bigint,
            profile_activity bigint,
            profile_visits bigint,
            follows bigint,
            video_views bigint,
            automatic_forward bigint,
            swipe_back bigint,
            swipe_down bigint,
            swipe_forward bigint,
            swipe_up bigint,
            engagement double precision,
            story_links text[],
            story_hashtags text[],
            profile_follower bigint,
            profile_er double precision,
            profile_static_er double precision,
            profile_reels_er double precision,
            publish_time timestamptz,
            observed_at timestamptz,
            source text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX instagram_post_profile ON instagram_post (profile_id, publish_time DESC);
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP TABLE instagram_post; DROP TABLE instagram_account; DROP TABLE credential; "
        "DROP TABLE scrape_request_event; DROP TABLE scrape_request_log;"
    )
