"""Outages (contract §2, §7): where each accepted request was produced, and credential change notices.

* ``scrape_request_log.enqueued_topic`` / ``enqueued_partition`` / ``enqueued_offset``: where the
  request's record landed when it was handed to the broker (the topic names the deployment's prefix).
  The reconciler reads that offset back to tell a request waiting in a backlog (the record is there)
  from one a broker restart lost (it is not).
* ``beat_credential`` notifications: every change to a credential that decides whether it may be used
  (added, re-enabled, disabled, rested, expired, new secrets) is announced on the ``beat_credential``
  channel with the credential's id, so every worker's in-memory copy follows within a second. The
  bookkeeping columns a worker writes itself (``last_used_at``, ``quota_strikes``) announce nothing.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE scrape_request_log
            ADD COLUMN enqueued_topic text,
            ADD COLUMN enqueued_partition integer,
            ADD COLUMN enqueued_offset bigint;

        CREATE FUNCTION beat_credential_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('beat_credential', COALESCE(NEW.id, OLD.id)::text);
            RETURN NULL;
        END $$;

        CREATE TRIGGER credential_added_or_removed AFTER INSERT OR DELETE ON credential
            FOR EACH ROW EXECUTE FUNCTION beat_credential_changed();
        CREATE TRIGGER credential_changed AFTER UPDATE ON credential
            FOR EACH ROW WHEN (
                OLD.enabled IS DISTINCT FROM NEW.enabled
                OR OLD.disabled_till IS DISTINCT FROM NEW.disabled_till
                OR OLD.data_access_expired IS DISTINCT FROM NEW.data_access_expired
                OR OLD.credentials IS DISTINCT FROM NEW.credentials
                OR OLD.handle IS DISTINCT FROM NEW.handle
                OR OLD.source IS DISTINCT FROM NEW.source)
            EXECUTE FUNCTION beat_credential_changed();
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER credential_changed ON credential; DROP TRIGGER credential_added_or_removed ON credential; "
        "DROP FUNCTION beat_credential_changed(); "
        "ALTER TABLE scrape_request_log DROP COLUMN enqueued_offset, DROP COLUMN enqueued_partition, "
        "DROP COLUMN enqueued_topic;"
    )
