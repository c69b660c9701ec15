"""One page of a paged listing, as a provider client returns it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Page:
    """One page of a paged listing: the items and the cursor of the next page (None = last page)."""

    items: list[Any]
    next_cursor: str | None
