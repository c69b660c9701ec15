"""Room for in-place updates on the two tables every refresh rewrites.

Each profile refresh updates an account and its recent posts. With full pages an
updated row moves to another page and every index gets a new entry; with 30 %
of each page free, most updates stay on their page and leave the indexes alone
(heap-only tuples), which makes the sink's batches cheaper and the indexes smaller.
Existing pages keep their layout until rewritten; new ones follow the setting.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.execute("ALTER TABLE instagram_post SET (fillfactor = 70); ALTER TABLE instagram_account SET (fillfactor = 70)")


def downgrade() -> None:
    op.execute("ALTER TABLE instagram_post RESET (fillfactor); ALTER TABLE instagram_account RESET (fillfactor)")
