"""The status page's windows: ``scrape_request_event (at)``, so "the last minutes" of events is an index range
scan rather than a pass over every event ever stored (issue Observability, the live status page).

Revision ID: 0015
Revises: 0012
"""

from alembic import op

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    op.execute("CREATE INDEX scrape_request_event_at ON scrape_request_event (at)")


def downgrade() -> None:
    op.execute("DROP INDEX scrape_request_event_at")
