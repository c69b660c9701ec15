"""Topic names (contract §2). A configured prefix is applied by ``Settings.topic``."""

from __future__ import annotations

SCRAPE_PREFIX = "beat.scrape."
STATUS = "scrape_request_log"
PROFILE_LOG = "profile_log"
POST_LOG = "post_log"
POST_ACTIVITY_LOG = "post_activity_log"
PROFILE_RELATIONSHIP_LOG = "profile_relationship_log"
ORDER_LOG = "order_log"
YT_ACTIVITY_LOG = "yt_activity_log"
YT_PROFILE_RELATIONSHIP_LOG = "yt_profile_relationship_log"
ASSET_LOG = "asset_log"
# Reports (contract §2): one sentiment per comment; one completion per collection report.
SENTIMENT_LOG = "sentiment_log"
REPORT_LOG = "report_log"
DEAD_LETTER = "beat.dead_letter"
TRACE_LOG = "trace_log"

LOG_TOPICS = (
    PROFILE_LOG,
    POST_LOG,
    POST_ACTIVITY_LOG,
    PROFILE_RELATIONSHIP_LOG,
    ORDER_LOG,
    YT_ACTIVITY_LOG,
    YT_PROFILE_RELATIONSHIP_LOG,
    ASSET_LOG,
    SENTIMENT_LOG,
    REPORT_LOG,
)

# The log topics the Postgres sink stores. A COMPLETE announces how many events it produced to
# these (``result["announced"]``), and the sink counts them as written or refused: the request is
# *stored* when the two meet. The events-only topics are for consumers of Kafka alone.
STORED_TOPICS = (
    PROFILE_LOG,
    POST_LOG,
    POST_ACTIVITY_LOG,
    PROFILE_RELATIONSHIP_LOG,
    ORDER_LOG,
    ASSET_LOG,
    SENTIMENT_LOG,
)


RETRY_PREFIX = "beat.retry."


def retry_topic(tier: str) -> str:
    """The delay tier's topic, e.g. ``beat.retry.30s`` (tiers are configuration: ``Settings.retry_tiers``)."""
    return f"{RETRY_PREFIX}{tier}"


# The header of a retry record naming when it is due: seconds since the epoch, as ASCII.
RETRY_DUE_HEADER = "beat-due"


def scrape_topic(flow: str) -> str:
    return f"{SCRAPE_PREFIX}{flow}"


PRIORITY_SUFFIX = ".priority"


def priority_topic(flow: str) -> str:
    """The flow's priority lane, ``beat.scrape.<flow>.priority``: on-demand requests, drained ahead of the bulk
    topic (which requests go there is configuration: ``Settings.bulk_priority``)."""
    return f"{SCRAPE_PREFIX}{flow}{PRIORITY_SUFFIX}"


# Kinds of topic, which share their settings (retention, in ``Settings.topic_retention_ms``).
TOPIC_KINDS = ("requests", "priority", "retry", "status", "logs", "dead_letter", "trace")


def topic_kind(name: str) -> str:
    """The kind of an unprefixed topic name; any topic not named here is an event log."""
    if name.startswith(SCRAPE_PREFIX):
        return "priority" if name.endswith(PRIORITY_SUFFIX) else "requests"
    if name.startswith(RETRY_PREFIX):
        return "retry"
    kinds = {STATUS: "status", DEAD_LETTER: "dead_letter", TRACE_LOG: "trace"}
    if name in kinds:
        return kinds[name]
    return "logs"
