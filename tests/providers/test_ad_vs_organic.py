"""The ad-vs-organic model client against the sandbox's model: batches of at most ten, predictions by video id."""

from __future__ import annotations

import pytest

from providers.errors import NotSupported
from providers.youtube.ad_vs_organic import SOURCE, AdVsOrganicClient


async def test_predictions_by_video_id(sandbox_http):
    client = AdVsOrganicClient(sandbox_http(SOURCE))
    rows = [
        {"videoId": "promoted", "view": 100_000, "likecount": 50, "commentcount": 3},
        {"videoId": "organic", "view": 1_000, "likecount": 80, "commentcount": 9},
        {"videoId": "unseen", "view": None, "likecount": None},
    ]
    assert await client.predict(rows) == {"promoted": 1, "organic": 0, "unseen": 0}


async def test_more_than_ten_videos_are_not_asked(sandbox_http):
    client = AdVsOrganicClient(sandbox_http(SOURCE))
    with pytest.raises(NotSupported, match="10 videos at a time"):
        await client.predict([{"videoId": str(n)} for n in range(11)])
