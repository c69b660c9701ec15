"""YAKE keywords of a caption, title or comment, computed in the flow so they travel in the event.

Settings and output format are the legacy ones (legacy §9): one-word keywords, top 5,
rendered as the Python ``str()`` of the list (``"['fitness', 'gym']"``), "" for no text,
because downstream consumers of the legacy events parse exactly that.
"""

from __future__ import annotations

from functools import lru_cache

import yake


@lru_cache(maxsize=1)
def _extractor() -> yake.KeywordExtractor:
    return yake.KeywordExtractor(n=1, top=5)


def keywords(text: str | None) -> str:
    if not text or not text.strip():
        return ""
    return str([keyword for keyword, _score in _extractor().extract_keywords(text)])
