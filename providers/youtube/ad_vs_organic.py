"""The ad-vs-organic model (legacy ``AD_VS_ORGANIC``), asked by ``fetch_ad_vs_organic_csv`` (legacy §11.2).

``POST <BEAT_AD_VS_ORGANIC_URL>/ad_vs_organic`` with a JSON array of at most ``BATCH`` videos, each an object
of the legacy's feature columns (``FEATURES``); the answer is an object keyed by ``videoId`` whose value is
the model's ``ad_predicted`` for that video. A video the model leaves out is written without a prediction.
The base URL is the ``ad_vs_organic`` label's (the worker maps the setting to it), so the call goes through
ProviderHttp's timeout, error mapping and trace like any provider's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from providers.errors import BadResponse, NotSupported
from providers.http import ProviderHttp
from providers.parsing import json_object

SOURCE = "ad_vs_organic"
PATH = "/ad_vs_organic"
BATCH = 10
FEATURES = (
    "videoId",
    "view",
    "Channel_videoCount",
    "duration",
    "Channel_SubscriberCount",
    "DislikeCount",
    "Videoage",
    "likecount",
    "commentcount",
)


def parse_predictions(payload: Mapping[str, Any], asked: Sequence[str]) -> dict[str, Any]:
    """``{videoId: ad_predicted}`` for the asked videos the answer names; a prediction must be a number or a
    boolean, as the model's classifier gives."""
    predictions: dict[str, Any] = {}
    for video_id in asked:
        value = payload.get(video_id)
        if value is None:
            continue
        if not isinstance(value, (int, float, bool)):
            raise BadResponse(f"ad_predicted of {video_id} is not a number: {value!r}", source=SOURCE)
        predictions[video_id] = value
    return predictions


class AdVsOrganicClient:
    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    async def predict(self, rows: Sequence[Mapping[str, Any]], *, request_id: str | None = None) -> dict[str, Any]:
        """Predictions for at most ``BATCH`` rows of ``FEATURES``."""
        if len(rows) > BATCH:
            raise NotSupported(f"the model takes {BATCH} videos at a time, not {len(rows)}", source=SOURCE)
        body = [{name: row.get(name) for name in FEATURES} for row in rows]
        response = await self._http.request(SOURCE, "POST", PATH, json=body, request_id=request_id)
        payload = json_object(response, SOURCE, BadResponse, f"POST {PATH}")
        return parse_predictions(payload, [str(row["videoId"]) for row in rows])
