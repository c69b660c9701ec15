"""Instagram's web GraphQL JSON in the sandbox: media nodes and the connections that list them.

ArrayBobo's timelines, tagged posts and single posts, JoTucker's hashtag feeds, NeoTank's
timeline pages and Lama's ``/a1/user`` all pass these shapes through, so the same post is the
same node whichever provider serves it.
"""

from __future__ import annotations

import json
from typing import Any

from providers.sandbox import cdn
from providers.sandbox.instagram import Account, Location, Post, Tag, encode_shortcode
from providers.sandbox.instagram_v1 import PRODUCT_TYPES

_TYPENAME = {"image": "GraphImage", "video": "GraphVideo", "carousel": "GraphSidecar"}


def page_info(end_cursor: str | None) -> dict[str, Any]:
    return {"has_next_page": end_cursor is not None, "end_cursor": end_cursor}


def timeline_connection(posts: list[Post], count: int, end_cursor: str | None) -> dict[str, Any]:
    """One page of ``count`` timeline nodes, as ``edge_owner_to_timeline_media`` and its kin list them."""
    return {
        "count": count,
        "page_info": page_info(end_cursor),
        "edges": [{"node": timeline_node(post)} for post in posts],
    }


def graphql_user(account: Account) -> dict[str, Any]:
    return {
        "full_name": account.full_name,
        "followed_by_viewer": False,
        "id": account.profile_id,
        "is_verified": account.is_verified,
        "profile_pic_url": account.profile_pic_url,
        "username": account.handle,
    }


def graphql_location(location: Location | None, *, with_address: bool) -> dict[str, Any] | None:
    if location is None:
        return None
    out: dict[str, Any] = {"id": location.id, "has_public_page": True, "name": location.name, "slug": location.slug}
    if with_address:
        out["address_json"] = json.dumps(
            {
                "street_address": "",
                "zip_code": "",
                "city_name": location.city.name,
                "region_name": "",
                "country_code": "IN",
                "exact_city_match": False,
                "exact_region_match": False,
                "exact_country_match": False,
            }
        )
    return out


def _graphql_tags(tags: tuple[Tag, ...]) -> dict[str, Any]:
    return {"edges": [{"node": {"user": graphql_user(tag.account), "x": tag.x, "y": tag.y}} for tag in tags]}


def _graphql_children(post: Post) -> dict[str, Any]:
    return {
        "edges": [
            {
                "node": {
                    "__typename": "GraphImage",
                    "id": str(post.media_pk + 1 + child),
                    "shortcode": encode_shortcode(post.media_pk + 1 + child),
                    "dimensions": {"height": post.height, "width": post.width},
                    "display_url": cdn.image(post.media_pk, post.width, post.height, variant=10 + child),
                    "is_video": False,
                    "accessibility_caption": post.accessibility_caption,
                    "edge_media_to_tagged_user": {"edges": []},
                }
            }
            for child in range(post.children)
        ]
    }


def graphql_media(post: Post) -> dict[str, Any]:
    """The fields every GraphQL media node carries, a timeline's or a single post's."""
    display = cdn.image(post.media_pk, post.width, post.height)
    node: dict[str, Any] = {
        "__typename": _TYPENAME[post.kind],
        "id": str(post.media_pk),
        "shortcode": post.shortcode,
        "dimensions": {"height": post.height, "width": post.width},
        "display_url": display,
        "edge_media_to_tagged_user": _graphql_tags(post.tags),
        "fact_check_overall_rating": None,
        "fact_check_information": None,
        "gating_info": None,
        "sharing_friction_info": {"should_have_sharing_friction": False, "bloks_app_url": None},
        "media_overlay_info": None,
        "media_preview": None,
        "is_video": post.kind == "video",
        "has_upcoming_event": False,
        "accessibility_caption": post.accessibility_caption,
        "edge_media_to_caption": {"edges": [{"node": {"text": post.caption}}] if post.caption is not None else []},
        "edge_media_to_comment": {"count": post.comments},
        "comments_disabled": False,
        "taken_at_timestamp": post.taken_at,
        "edge_media_preview_like": {"count": post.likes, "edges": []},
        "edge_media_to_sponsor_user": {
            "edges": [
                {"node": {"sponsor": {"id": sponsor.profile_id, "username": sponsor.handle}}}
                for sponsor in post.sponsors
            ]
        },
        "is_affiliate": False,
        "is_paid_partnership": bool(post.sponsors),
        "viewer_has_liked": False,
        "viewer_has_saved": False,
        "viewer_has_saved_to_collection": False,
        "viewer_in_photo_of_you": False,
        "viewer_can_reshare": True,
        "thumbnail_src": cdn.image(post.media_pk, 640, 640, variant=1),
        "coauthor_producers": [],
        "pinned_for_users": [],
        "product_type": PRODUCT_TYPES[post.kind],
    }
    if post.kind == "video":
        node.update(
            dash_info={"is_dash_eligible": True, "video_dash_manifest": None, "number_of_qualities": 4},
            has_audio=True,
            video_url=cdn.video(post.media_pk, 720, 1280),
            video_view_count=post.video_views,
            clips_music_attribution_info={
                "artist_name": post.owner.handle,
                "song_name": "Original audio",
                "uses_original_audio": True,
                "should_mute_audio": False,
                "should_mute_audio_reason": "",
                "audio_id": str(post.media_pk % 10**16),
            },
        )
    if post.kind == "carousel":
        node["edge_sidecar_to_children"] = _graphql_children(post)
    return node


def timeline_node(post: Post) -> dict[str, Any]:
    """A post as a timeline or tagged listing carries it."""
    node = graphql_media(post)
    node.update(
        owner={"id": post.owner.profile_id, "username": post.owner.handle},
        edge_liked_by={"count": post.likes},
        location=graphql_location(post.location, with_address=False),
        thumbnail_resources=[
            {"src": cdn.image(post.media_pk, size, size, variant=1), "config_width": size, "config_height": size}
            for size in (150, 240, 320, 480, 640)
        ],
        felix_profile_grid_crop=None,
    )
    return node
