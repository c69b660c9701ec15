"""The records of the sentiment pipeline (legacy §11.4) and of the collection reports (legacy §11.2).

A likes or comments flow emits each page it read as one ``ActivityPage`` on ``post_activity_log``, beside
the page's single activities (legacy: ``post_activity_log_bulk``, once per page). The sentiment flow turns a
page of comments into one ``Sentiment`` per comment on ``sentiment_log`` (legacy ``sentiment_log_events``).
A collection report announces the files it wrote with one ``ReportDone`` on ``report_log`` (legacy: the
``coffee.dx`` completion messages).
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from topics.models import Activity, Metrics, Payload, Stamps


class PageActivity(Activity):
    """One like or comment inside a page event. Read by consumers, it ignores fields it does not know, as
    every event does: a producer one version ahead may add one (``Model``)."""

    model_config = ConfigDict(extra="ignore")


class ActivityPage(Activity):
    """One page of likes or comments of a post as a source answered it: every activity of the page, in
    order. Shaped as an ``Activity`` (no actor: a page has many) so a reader of the topic's activities
    decodes it too and skips it by its ``kind``."""

    kind: str = "activity_page"
    actor_profile_id: str | None = Field(None, description="always null: a page has many actors")
    activities: list[PageActivity] = Field(description="the page's likes or comments, each as its own event carries it")

    @property
    def key(self) -> str:
        # The post's key: pages of one post stay in order on one partition.
        return f"{self.platform.value}:{self.shortcode}:{self.activity_type}"

    @property
    def event_key(self) -> str:
        return self.key

    def comments(self) -> list[dict[str, str]]:
        """The page as the SENTIMENT model's input, ``[{"text", "id"}]`` from the ``text`` and ``comment_id``
        dimensions (legacy §11.4); likes and comments without text or id give nothing."""
        found = []
        for activity in self.activities:
            text, comment_id = activity.dimensions.get("text"), activity.dimensions.get("comment_id")
            if isinstance(text, str) and text.strip() and comment_id not in (None, ""):
                found.append({"text": text, "id": str(comment_id)})
        return found


class ActivityPageLog(ActivityPage, Stamps):
    """A page of likes or comments (legacy ``post_activity_log_bulk``); the sentiment flow reads its comments."""


class Sentiment(Payload):
    """The SENTIMENT model's verdict on one comment (legacy ``sentiment_log_events``)."""

    kind: str = "sentiment"
    source: str = Field("beat", description="always beat, as the legacy events said")
    shortcode: str = Field(description="the post the comment is on")
    comment_id: str
    comment: str
    sentiment: str
    score: float
    metrics: Metrics = Field(default_factory=dict)
    dimensions: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.platform.value}:{self.comment_id}"


class SentimentLog(Sentiment, Stamps):
    """One comment's sentiment and score (legacy ``sentiment_log_events`` fields)."""


class ReportDone(Payload):
    """A collection report's files: which report, for which job or collection, and where each file is."""

    kind: str = "report"
    report: str = Field(description="keyword_collection or sentiment_collection")
    job_id: str | None = Field(None, description="keyword collection: the caller's job id")
    collection_type: str | None = Field(None, description="sentiment collection: the caller's collection type")
    collection_id: str | None = Field(None, description="sentiment collection: the caller's collection id")
    paths: dict[str, str] = Field(description="file role (report, demographic) -> its key in the asset store")
    bucket: str | None = Field(None, description="the S3 bucket holding them; null for the local asset store")
    summary: dict[str, Any] = Field(default_factory=dict, description="the report's small summary")

    @property
    def key(self) -> str:
        return f"{self.platform.value}:{self.report}:{self.job_id or self.collection_id}"


class ReportLog(ReportDone, Stamps):
    """A collection report's completion, carrying its paths (legacy ``coffee.dx`` completion keys)."""
