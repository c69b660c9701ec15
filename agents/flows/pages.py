"""Page events (legacy ``post_activity_log_bulk``): after a likes or comments flow has emitted each activity,
it emits every page it read as one ``ActivityPage`` on ``post_activity_log``, which the sentiment feed reads.

A page is the provider's page, cut into pieces of at most ``MAX_PAGE_ACTIVITIES`` so that a page event of
long comments stays far below the message size limit.
"""

from __future__ import annotations

from collections.abc import Sequence

from agents.flows.context import FlowContext
from topics.models import Activity
from topics.sentiment import ActivityPage, PageActivity

MAX_PAGE_ACTIVITIES = 100


def _plain(activity: Activity) -> PageActivity:
    # The emitted event carries Beat's stamps and the flow's added dimensions; a page row is the activity only.
    return PageActivity.model_validate({name: getattr(activity, name) for name in Activity.model_fields})


def emit_pages(ctx: FlowContext, activities: Sequence[Activity], page_sizes: Sequence[int]) -> int:
    """Emit ``activities`` (in the order the pages gave them) as page events; the number emitted."""
    emitted = 0
    start = 0
    for size in page_sizes:
        page = activities[start : start + size]
        start += size
        for piece in range(0, len(page), MAX_PAGE_ACTIVITIES):
            rows = [_plain(activity) for activity in page[piece : piece + MAX_PAGE_ACTIVITIES]]
            first = rows[0]
            ctx.emit(
                ActivityPage(
                    platform=first.platform,
                    source=first.source,
                    activity_type=first.activity_type,
                    shortcode=first.shortcode,
                    publish_time=first.publish_time,
                    activities=rows,
                )
            )
            emitted += 1
    return emitted
