"""ArrayBobo (instagram-scraper-2022 on RapidAPI) in the sandbox: its paths, answering in its real shapes.

Profiles come in the private API's v1 ``user`` shape, timelines, tagged posts and single posts
in the web GraphQL shape, reels in the v1 clips shape and stories in the v1 reels_media shape,
each with the extra fields the real answers carry. ``providers/fixtures/arraybobo/`` holds
answers of these builders.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from providers.sandbox import cdn
from providers.sandbox.instagram import (
    Account,
    InstagramWorld,
    Location,
    Post,
    Tag,
    decode_cursor,
    encode_cursor,
    encode_shortcode,
    seeded,
)
from providers.sandbox.stories import Story, active_stories, tagged_posts

PREFIX = "/rapidapi-arraybobo"

USER_NOT_FOUND = {"message": "User not found", "status": "fail"}
MEDIA_NOT_FOUND = {"message": "Media not found or unavailable", "status": "fail"}

_TYPENAME = {"image": "GraphImage", "video": "GraphVideo", "carousel": "GraphSidecar"}
_PRODUCT_TYPE = {"image": "feed", "video": "clips", "carousel": "carousel_container"}
_MEDIA_TYPE = {"image": 1, "video": 2, "carousel": 8}


# Profiles (v1)

def user_info(account: Account) -> dict[str, Any]:
    user: dict[str, Any] = {
        "pk": int(account.profile_id),
        "pk_id": account.profile_id,
        "username": account.handle,
        "full_name": account.full_name,
        "is_private": account.is_private,
        "is_verified": account.is_verified,
        "profile_pic_id": f"{int(account.profile_id) * 7 % 10**18}_{account.profile_id}",
        "profile_pic_url": account.profile_pic_url,
        "hd_profile_pic_url_info": {"url": account.hd_profile_pic_url, "width": 1080, "height": 1080},
        "hd_profile_pic_versions": [
            {"width": size, "height": size, "url": cdn.profile_picture(account.profile_id, size)} for size in (320, 640)
        ],
        "has_anonymous_profile_picture": False,
        "media_count": account.media_count,
        "follower_count": account.followers,
        "following_count": account.following,
        "following_tag_count": 0,
        "biography": account.biography,
        "biography_with_entities": {"raw_text": account.biography, "entities": []},
        "external_url": account.external_url,
        "external_lynx_url": f"https://l.instagram.com/?u={account.external_url}" if account.external_url else "",
        "bio_links": [
            {"link_id": int(account.profile_id) % 10**15, "url": account.external_url, "lynx_url": "",
             "link_type": "external", "title": "", "open_external_url_with_in_app_browser": True}
        ] if account.external_url else [],
        "account_type": account.account_type,
        "is_business": account.account_type == 2,
        "interop_messaging_user_fbid": account.fbid,
        "fbid_v2": str(account.fbid),
        "has_highlight_reels": account.media_count > 30,
        "has_guides": False,
        "has_chaining": True,
        "is_favorite": False,
        "is_interest_account": account.account_type != 1,
        "is_memorialized": False,
        "mutual_followers_count": 0,
        "pronouns": [],
        "show_account_transparency_details": True,
        "total_igtv_videos": 0,
        "usertags_count": int(account.profile_id) % 40,
        "fan_club_info": {"fan_club_id": None, "fan_club_name": None, "is_fan_club_referral_eligible": None,
                          "fan_consideration_page_revamp_eligiblity": None, "is_fan_club_gifting_eligible": None},
    }
    if account.account_type != 1:
        city = account.city
        user.update(
            category=account.category,
            category_id=account.category_id,
            should_show_category=True,
            can_hide_category=True,
            public_email=account.public_email,
            public_phone_country_code="91" if account.contact_phone else "",
            public_phone_number=account.contact_phone[4:].replace(" ", "") if account.contact_phone else "",
            contact_phone_number=account.contact_phone or "",
            business_contact_method="CALL" if account.contact_phone else "UNKNOWN",
            city_id=city.id if city else 0,
            city_name=city.name if city else "",
            address_street="",
            zip="",
            latitude=city.latitude if city else 0.0,
            longitude=city.longitude if city else 0.0,
            direct_messaging="UNKNOWN",
        )
    return {"user": user, "status": "ok"}


# Timeline and single posts (web GraphQL)

def _graphql_user(account: Account) -> dict[str, Any]:
    return {
        "full_name": account.full_name,
        "followed_by_viewer": False,
        "id": account.profile_id,
        "is_verified": account.is_verified,
        "profile_pic_url": account.profile_pic_url,
        "username": account.handle,
    }


def _graphql_location(location: Location | None, *, with_address: bool) -> dict[str, Any] | None:
    if location is None:
        return None
    out: dict[str, Any] = {"id": location.id, "has_public_page": True, "name": location.name, "slug": location.slug}
    if with_address:
        out["address_json"] = json.dumps({
            "street_address": "", "zip_code": "", "city_name": location.city.name,
            "region_name": "", "country_code": "IN", "exact_city_match": False,
            "exact_region_match": False, "exact_country_match": False,
        })
    return out


def _graphql_tags(tags: tuple[Tag, ...]) -> dict[str, Any]:
    return {"edges": [{"node": {"user": _graphql_user(tag.account), "x": tag.x, "y": tag.y}} for tag in tags]}


def _graphql_children(post: Post) -> dict[str, Any]:
    return {"edges": [
        {"node": {
            "__typename": "GraphImage",
            "id": str(post.media_pk + 1 + child),
            "shortcode": encode_shortcode(post.media_pk + 1 + child),
            "dimensions": {"height": post.height, "width": post.width},
            "display_url": cdn.image(post.media_pk, post.width, post.height, variant=10 + child),
            "is_video": False,
            "accessibility_caption": post.accessibility_caption,
            "edge_media_to_tagged_user": {"edges": []},
        }}
        for child in range(post.children)
    ]}


def _graphql_common(post: Post) -> dict[str, Any]:
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
        "edge_media_to_sponsor_user": {"edges": [
            {"node": {"sponsor": {"id": sponsor.profile_id, "username": sponsor.handle}}} for sponsor in post.sponsors
        ]},
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
        "product_type": _PRODUCT_TYPE[post.kind],
    }
    if post.kind == "video":
        node.update(
            dash_info={"is_dash_eligible": True, "video_dash_manifest": None, "number_of_qualities": 4},
            has_audio=True,
            video_url=cdn.video(post.media_pk, 720, 1280),
            video_view_count=post.video_views,
            clips_music_attribution_info={"artist_name": post.owner.handle, "song_name": "Original audio",
                                          "uses_original_audio": True, "should_mute_audio": False,
                                          "should_mute_audio_reason": "", "audio_id": str(post.media_pk % 10**16)},
        )
    if post.kind == "carousel":
        node["edge_sidecar_to_children"] = _graphql_children(post)
    return node


def timeline_node(post: Post) -> dict[str, Any]:
    node = _graphql_common(post)
    node.update(
        owner={"id": post.owner.profile_id, "username": post.owner.handle},
        edge_liked_by={"count": post.likes},
        location=_graphql_location(post.location, with_address=False),
        thumbnail_resources=[
            {"src": cdn.image(post.media_pk, size, size, variant=1), "config_width": size, "config_height": size}
            for size in (150, 240, 320, 480, 640)
        ],
        felix_profile_grid_crop=None,
    )
    return node


def timeline_page(owner: Account, posts: list[Post], end_cursor: str | None) -> dict[str, Any]:
    return {
        "data": {"user": {"edge_owner_to_timeline_media": {
            "count": owner.media_count,
            "page_info": {"has_next_page": end_cursor is not None, "end_cursor": end_cursor},
            "edges": [{"node": timeline_node(post)} for post in posts],
        }}},
        "status": "ok",
    }


def post_info(post: Post) -> dict[str, Any]:
    owner = post.owner
    media = _graphql_common(post)
    media.update(
        display_resources=[
            {"src": cdn.image(post.media_pk, width, width * post.height // post.width, variant=2),
             "config_width": width, "config_height": width * post.height // post.width}
            for width in (640, 750, 1080)
        ],
        upcoming_event=None,
        owner={
            **_graphql_user(owner),
            "blocked_by_viewer": False,
            "restricted_by_viewer": None,
            "has_blocked_viewer": False,
            "is_embeds_disabled": False,
            "is_private": owner.is_private,
            "is_unpublished": False,
            "requested_by_viewer": False,
            "pass_tiering_recommendation": True,
            "edge_owner_to_timeline_media": {"count": owner.media_count},
            "edge_followed_by": {"count": owner.followers},
        },
        edge_media_to_parent_comment={"count": post.comments, "page_info": {"has_next_page": False, "end_cursor": None},
                                      "edges": []},
        edge_media_to_hoisted_comment={"edges": []},
        edge_media_preview_comment={"count": post.comments, "edges": []},
        edge_web_media_to_related_media={"edges": []},
        edge_related_profiles={"edges": []},
        location=_graphql_location(post.location, with_address=True),
        is_ad=False,
        caption_is_edited=False,
        has_ranked_comments=False,
        like_and_view_counts_disabled=False,
        commenting_disabled_for_viewer=False,
    )
    if post.kind == "video":
        media.update(video_play_count=post.video_plays, video_duration=post.video_duration, title="",
                     encoding_status=None, is_published=True)
    return media


# Reels (v1 clips)

def v1_user(account: Account) -> dict[str, Any]:
    return {
        "pk": int(account.profile_id),
        "pk_id": account.profile_id,
        "username": account.handle,
        "full_name": account.full_name,
        "is_private": account.is_private,
        "is_verified": account.is_verified,
        "profile_pic_id": f"{int(account.profile_id) * 7 % 10**18}_{account.profile_id}",
        "profile_pic_url": account.profile_pic_url,
        "has_anonymous_profile_picture": False,
        "fbid_v2": str(account.fbid),
        "is_unpublished": False,
        "account_badges": [],
        "latest_reel_media": 0,
        "friendship_status": {"following": False, "is_bestie": False, "is_feed_favorite": False,
                              "is_restricted": False, "outgoing_request": False},
    }


def v1_caption(post: Post) -> dict[str, Any] | None:
    if post.caption is None:
        return None
    return {
        "pk": str(post.media_pk + 17), "user_id": int(post.owner.profile_id), "text": post.caption, "type": 1,
        "created_at": post.taken_at, "created_at_utc": post.taken_at, "content_type": "comment",
        "status": "Active", "bit_flags": 0, "did_report_as_spam": False, "share_enabled": False,
        "user": v1_user(post.owner), "is_covered": False, "is_ranked_comment": False, "media_id": post.media_pk,
        "private_reply_status": 0,
    }


def v1_tags_and_place(post: Post) -> dict[str, Any]:
    """The optional parts of a v1 media item: user tags, paid-partnership sponsors and location."""
    extras: dict[str, Any] = {}
    if post.tags:
        extras["usertags"] = {"in": [
            {"user": v1_user(tag.account), "position": [tag.x, tag.y],
             "start_time_in_video_in_sec": None, "duration_in_video_in_sec": None}
            for tag in post.tags
        ]}
    if post.sponsors:
        extras["sponsor_tags"] = [
            {"sponsor": v1_user(sponsor), "permission": True, "sponsor_id": sponsor.profile_id, "is_pending": False}
            for sponsor in post.sponsors
        ]
    if post.location is not None:
        location = post.location
        extras["location"] = {
            "pk": int(location.id), "short_name": location.name, "facebook_places_id": int(location.id) * 3,
            "external_source": "facebook_places", "name": location.name, "address": "", "city": location.city.name,
            "has_viewer_saved": False, "lng": location.city.longitude, "lat": location.city.latitude,
            "is_eligible_for_guides": True,
        }
    return extras


def reel_item(post: Post) -> dict[str, Any]:
    owner = v1_user(post.owner)
    media: dict[str, Any] = {
        "taken_at": post.taken_at,
        "pk": post.media_pk,
        "id": post.media_id,
        "device_timestamp": post.taken_at * 1_000_000 + post.media_pk % 1_000_000,
        "media_type": _MEDIA_TYPE[post.kind],
        "code": post.shortcode,
        "client_cache_key": f"{post.media_pk % 10**10}.2",
        "filter_type": 0,
        "caption_is_edited": False,
        "like_and_view_counts_disabled": False,
        "product_type": _PRODUCT_TYPE[post.kind],
        "is_in_profile_grid": False,
        "profile_grid_control_enabled": False,
        "user": owner,
        "owner": owner,
        "image_versions2": {
            "candidates": [
                {"width": width, "height": width * 16 // 9, "url": cdn.image(post.media_pk, width, width * 16 // 9, 3)}
                for width in (1080, 720, 360)
            ],
            "additional_candidates": {
                "igtv_first_frame": {"width": 640, "height": 1136, "url": cdn.image(post.media_pk, 640, 1136, 4)},
                "first_frame": {"width": 640, "height": 1136, "url": cdn.image(post.media_pk, 640, 1136, 5)},
                "smart_frame": None,
            },
        },
        "original_width": post.width,
        "original_height": post.height,
        "video_versions": [
            {"type": version, "width": width, "height": width * 16 // 9,
             "url": cdn.video(post.media_pk, width, width * 16 // 9), "id": str(post.media_pk % 10**15 + version)}
            for version, width in ((101, 720), (102, 480), (103, 360))
        ],
        "video_duration": post.video_duration,
        "has_audio": True,
        "is_dash_eligible": 1,
        "number_of_qualities": 4,
        "video_codec": "avc1.64001F",
        "comment_count": post.comments,
        "like_count": post.likes,
        "play_count": post.video_plays,
        "ig_play_count": post.video_plays,
        "view_count": post.video_views,
        "caption": v1_caption(post),
        "clips_metadata": {
            "audio_type": "original_sounds",
            "music_info": None,
            "original_sound_info": {"audio_asset_id": post.media_pk % 10**16, "original_media_id": post.media_pk,
                                    "duration_in_ms": int((post.video_duration or 0) * 1000), "is_explicit": False,
                                    "ig_artist": owner, "original_audio_title": "Original audio"},
            "is_shared_to_fb": False,
        },
        "sharing_friction_info": {"should_have_sharing_friction": False, "bloks_app_url": None},
        "is_paid_partnership": bool(post.sponsors),
        "comment_inform_treatment": {"should_have_inform_treatment": False, "text": ""},
    }
    media.update(v1_tags_and_place(post))
    return {"media": media}


def reels_page(posts: list[Post], max_id: str | None) -> dict[str, Any]:
    return {
        "items": [reel_item(post) for post in posts],
        "paging_info": {"max_id": max_id, "more_available": max_id is not None},
        "status": "ok",
    }


# Tagged posts (web GraphQL)

def tagged_page(posts: list[Post], total: int, end_cursor: str | None) -> dict[str, Any]:
    return {
        "data": {"user": {"edge_user_to_photos_of_you": {
            "count": total,
            "page_info": {"has_next_page": end_cursor is not None, "end_cursor": end_cursor},
            "edges": [{"node": timeline_node(post)} for post in posts],
        }}},
        "status": "ok",
    }


# Stories (v1 reels_media)

def _sticker(story: Story, number: int) -> dict[str, Any]:
    """Where a sticker sits on the frame: stable per story, different per sticker."""
    offset = (story.pk // 7 + number * 13) % 40 / 100
    return {"x": round(0.3 + offset, 4), "y": round(0.25 + offset, 4), "z": number, "width": 0.42, "height": 0.08,
            "rotation": 0.0, "is_pinned": 0, "is_hidden": 0, "is_sticker": 1, "is_fb_sticker": 0}


def story_item(story: Story) -> dict[str, Any]:
    owner = story.owner
    width, height = 1080, 1920
    item: dict[str, Any] = {
        "taken_at": story.taken_at,
        "pk": story.pk,
        "id": story.media_id,
        "device_timestamp": story.taken_at * 1_000_000 + story.pk % 1_000_000,
        "media_type": 2 if story.kind == "video" else 1,
        "code": encode_shortcode(story.pk),
        "client_cache_key": f"{story.pk % 10**10}.3",
        "filter_type": 0,
        "caption": None,
        "caption_is_edited": False,
        "like_and_view_counts_disabled": False,
        "product_type": "story",
        "is_in_profile_grid": False,
        # Items carry a reduced owner; the reel's ``user`` has the full one.
        "user": {"pk": int(owner.profile_id), "pk_id": owner.profile_id, "is_private": owner.is_private,
                 "strong_id__": owner.profile_id},
        "image_versions2": {"candidates": [
            {"width": w, "height": w * height // width, "url": cdn.image(story.pk, w, w * height // width, variant)}
            for variant, w in enumerate((1080, 720, 480))
        ]},
        "original_width": width,
        "original_height": height,
        "expiring_at": story.expiring_at,
        "can_reshare": True,
        "can_reply": True,
        "can_send_prompt": False,
        "supports_reel_reactions": True,
        "story_is_saved_to_archive": False,
        "is_paid_partnership": bool(story.sponsors),
        "has_shared_to_fb": 0,
    }
    if story.kind == "video":
        item.update(
            video_versions=[
                {"type": version, "width": w, "height": w * 16 // 9, "url": cdn.video(story.pk, w, w * 16 // 9),
                 "id": str(story.pk % 10**15 + version)}
                for version, w in ((101, 720), (102, 480))
            ],
            video_duration=story.video_duration,
            has_audio=True,
            is_dash_eligible=1,
            number_of_qualities=2,
        )
    stickers = iter(range(8))
    if story.links:
        item["story_link_stickers"] = [
            {**_sticker(story, next(stickers)), "story_link": {
                "link_type": "web", "url": f"https://l.instagram.com/?u={link}", "link_title": "",
                "display_url": link.removeprefix("https://"),
            }}
            for link in story.links
        ]
    if story.hashtags:
        item["story_hashtags"] = [
            {**_sticker(story, next(stickers)),
             "hashtag": {"name": name, "id": str(17_841_500_000_000_000 + seeded("hashtag", name).randrange(10**12))}}
            for name in story.hashtags
        ]
    if story.mentions:
        item["reel_mentions"] = [
            {**_sticker(story, next(stickers)), "display_type": "mention_username", "user": v1_user(account)}
            for account in story.mentions
        ]
    if story.sponsors:
        item["sponsor_tags"] = [
            {"sponsor": v1_user(sponsor), "permission": True, "sponsor_id": sponsor.profile_id, "is_pending": False}
            for sponsor in story.sponsors
        ]
    return item


def story_reel(owner: Account, stories: list[Story]) -> dict[str, Any]:
    newest = stories[-1]
    return {
        "id": int(owner.profile_id),
        "strong_id__": owner.profile_id,
        "latest_reel_media": newest.taken_at,
        "expiring_at": newest.expiring_at,
        "seen": 0,
        "can_reply": True,
        "can_gif_quick_reply": True,
        "can_reshare": True,
        "can_react_with_avatar": False,
        "reel_type": "user_reel",
        "ad_expiry_timestamp_in_millis": None,
        "is_cta_sticker_available": None,
        "media_count": len(stories),
        "media_ids": [story.pk for story in stories],
        "user": v1_user(owner),
        "items": [story_item(story) for story in stories],
    }


def stories_answer(owner: Account, stories: list[Story]) -> dict[str, Any]:
    """Instagram's reels_media answer: keyed by the owner's id, empty when nothing is up."""
    if not stories:
        return {"reels": {}, "reels_media": [], "status": "ok"}
    reel = story_reel(owner, stories)
    return {"reels": {owner.profile_id: reel}, "reels_media": [reel], "status": "ok"}


# Routes

def _fail(message: str) -> JSONResponse:
    return JSONResponse({"message": message, "status": "fail"}, status_code=400)


class ArrayBoboRoutes:
    """Real answers are HTTP 200 even when the profile or post does not exist; only the body says so."""

    def __init__(self, world: InstagramWorld, clock: Callable[[], float] = time.time) -> None:
        self._world = world
        # Which stories are up depends on the moment asked; tests pin it.
        self._clock = clock

    def mount(self) -> Mount:
        return Mount(PREFIX, routes=[
            Route("/ig/info_username/", self.info_username),
            Route("/ig/info/", self.info),
            Route("/ig/posts/", self.posts),
            Route("/ig/post_info/", self.post_info),
            Route("/ig/reels_posts/", self.reels_posts),
            Route("/ig/tagged/", self.tagged),
            Route("/ig/stories/", self.stories),
        ])

    async def info_username(self, request: Request) -> JSONResponse:
        handle = request.query_params.get("user")
        if not handle:
            return _fail("Missing required parameter: user")
        account = self._world.account(handle)
        return JSONResponse(user_info(account) if account else USER_NOT_FOUND)

    async def info(self, request: Request) -> JSONResponse:
        profile_id = request.query_params.get("id_user")
        if not profile_id:
            return _fail("Missing required parameter: id_user")
        account = self._world.account_by_id(profile_id)
        return JSONResponse(user_info(account) if account else USER_NOT_FOUND)

    async def posts(self, request: Request) -> JSONResponse:
        profile_id = request.query_params.get("id_user")
        if not profile_id:
            return _fail("Missing required parameter: id_user")
        owner = self._world.account_by_id(profile_id)
        if owner is None:
            return JSONResponse({"data": {"user": None}, "status": "ok"})
        start = 0
        if cursor := request.query_params.get("end_cursor"):
            resumed = decode_cursor(cursor, "posts", owner.profile_id)
            if resumed is None:
                return _fail("Invalid end_cursor")
            start = resumed
        posts = self._world.timeline(owner, start)
        following = start + len(posts)
        more = bool(posts) and following < owner.media_count
        end_cursor = encode_cursor("posts", owner.profile_id, following) if more else None
        return JSONResponse(timeline_page(owner, posts, end_cursor))

    async def post_info(self, request: Request) -> JSONResponse:
        shortcode = request.query_params.get("shortcode")
        if not shortcode:
            return _fail("Missing required parameter: shortcode")
        post = self._world.post(shortcode)
        return JSONResponse(post_info(post) if post else MEDIA_NOT_FOUND)

    async def reels_posts(self, request: Request) -> JSONResponse:
        profile_id = request.query_params.get("id_user")
        if not profile_id:
            return _fail("Missing required parameter: id_user")
        owner = self._world.account_by_id(profile_id)
        if owner is None:
            return JSONResponse(USER_NOT_FOUND)
        start = 0
        if max_id := request.query_params.get("max_id"):
            resumed = decode_cursor(max_id, "reels", owner.profile_id)
            if resumed is None:
                return _fail("Invalid max_id")
            start = resumed
        posts, following = self._world.reels(owner, start)
        next_max_id = encode_cursor("reels", owner.profile_id, following) if following is not None else None
        return JSONResponse(reels_page(posts, next_max_id))

    async def tagged(self, request: Request) -> JSONResponse:
        profile_id = request.query_params.get("id_user")
        if not profile_id:
            return _fail("Missing required parameter: id_user")
        account = self._world.account_by_id(profile_id)
        if account is None:
            return JSONResponse({"data": {"user": None}, "status": "ok"})
        start = 0
        if cursor := request.query_params.get("end_cursor"):
            resumed = decode_cursor(cursor, "tagged", account.profile_id)
            if resumed is None:
                return _fail("Invalid end_cursor")
            start = resumed
        posts, following = tagged_posts(self._world, account, start)
        end_cursor = encode_cursor("tagged", account.profile_id, following) if following is not None else None
        return JSONResponse(tagged_page(posts, int(account.profile_id) % 40, end_cursor))

    async def stories(self, request: Request) -> JSONResponse:
        profile_id = request.query_params.get("id_user")
        if not profile_id:
            return _fail("Missing required parameter: id_user")
        account = self._world.account_by_id(profile_id)
        if account is None:
            return JSONResponse(USER_NOT_FOUND)
        return JSONResponse(stories_answer(account, active_stories(self._world, account, int(self._clock()))))
