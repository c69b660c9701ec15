"""Instagram's private (v1) API JSON in the sandbox: profiles, users, media items, reels and stories.

ArrayBobo, JoTucker, BestSolutions, RocketAPI and Lama's ``/a1/media`` pass these shapes through,
so the same account or post reads the same whichever provider serves it. Two renderings of a
feed item live here: JoTucker and Lama answer with ``v1_media``, BestSolutions and RocketAPI
with ``feed_item``. They differ in picture sizes and optional fields, and the providers'
fixtures hold those answers, so merging them would change what those providers answer.
"""

from __future__ import annotations

from typing import Any

from providers.sandbox import cdn
from providers.sandbox.instagram import Account, Post, encode_shortcode, seeded
from providers.sandbox.stories import Story

MEDIA_TYPES = {"image": 1, "video": 2, "carousel": 8}
PRODUCT_TYPES = {"image": "feed", "video": "clips", "carousel": "carousel_container"}
# A post's video versions: (version type, width) from the largest down.
_POST_VIDEOS = ((101, 720), (102, 480), (103, 360))
_STORY_VIDEOS = ((101, 720), (102, 480))


# Profiles and users


def user_info(account: Account) -> dict[str, Any]:
    """The v1 profile answer: the full ``user``, with a professional account's business fields."""
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
            {
                "link_id": int(account.profile_id) % 10**15,
                "url": account.external_url,
                "lynx_url": "",
                "link_type": "external",
                "title": "",
                "open_external_url_with_in_app_browser": True,
            }
        ]
        if account.external_url
        else [],
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
        "fan_club_info": {
            "fan_club_id": None,
            "fan_club_name": None,
            "is_fan_club_referral_eligible": None,
            "fan_consideration_page_revamp_eligiblity": None,
            "is_fan_club_gifting_eligible": None,
        },
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


def v1_user(account: Account, *, with_friendship: bool = True) -> dict[str, Any]:
    """A user as media items, reels and lists carry it; JoTucker's answers leave out the viewer's friendship."""
    user: dict[str, Any] = {
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
    }
    if with_friendship:
        user["friendship_status"] = {
            "following": False,
            "is_bestie": False,
            "is_feed_favorite": False,
            "is_restricted": False,
            "outgoing_request": False,
        }
    return user


# Parts of media items


def v1_media_head(post: Post) -> dict[str, Any]:
    """The fields every v1 media item opens with."""
    return {
        "taken_at": post.taken_at,
        "pk": post.media_pk,
        "id": post.media_id,
        "device_timestamp": post.taken_at * 1_000_000 + post.media_pk % 1_000_000,
        "media_type": MEDIA_TYPES[post.kind],
        "code": post.shortcode,
        "client_cache_key": f"{post.media_pk % 10**10}.2",
        "filter_type": 0,
        "caption_is_edited": False,
        "like_and_view_counts_disabled": False,
        "product_type": PRODUCT_TYPES[post.kind],
    }


def video_versions(media_pk: int, sizes: tuple[tuple[int, int], ...] = _POST_VIDEOS) -> list[dict[str, Any]]:
    """A video's 9:16 renditions, one per ``(version type, width)``."""
    return [
        {
            "type": version,
            "width": width,
            "height": width * 16 // 9,
            "url": cdn.video(media_pk, width, width * 16 // 9),
            "id": str(media_pk % 10**15 + version),
        }
        for version, width in sizes
    ]


def v1_caption(post: Post) -> dict[str, Any] | None:
    if post.caption is None:
        return None
    return {
        "pk": str(post.media_pk + 17),
        "user_id": int(post.owner.profile_id),
        "text": post.caption,
        "type": 1,
        "created_at": post.taken_at,
        "created_at_utc": post.taken_at,
        "content_type": "comment",
        "status": "Active",
        "bit_flags": 0,
        "did_report_as_spam": False,
        "share_enabled": False,
        "user": v1_user(post.owner),
        "is_covered": False,
        "is_ranked_comment": False,
        "media_id": post.media_pk,
        "private_reply_status": 0,
    }


def v1_tags_and_place(post: Post, *, with_friendship: bool = True) -> dict[str, Any]:
    """The optional parts of a v1 media item: user tags, paid-partnership sponsors and location."""
    extras: dict[str, Any] = {}
    if post.tags:
        extras["usertags"] = {
            "in": [
                {
                    "user": v1_user(tag.account, with_friendship=with_friendship),
                    "position": [tag.x, tag.y],
                    "start_time_in_video_in_sec": None,
                    "duration_in_video_in_sec": None,
                }
                for tag in post.tags
            ]
        }
    if post.sponsors:
        extras["sponsor_tags"] = [
            {
                "sponsor": v1_user(sponsor, with_friendship=with_friendship),
                "permission": True,
                "sponsor_id": sponsor.profile_id,
                "is_pending": False,
            }
            for sponsor in post.sponsors
        ]
    if post.location is not None:
        location = post.location
        extras["location"] = {
            "pk": int(location.id),
            "short_name": location.name,
            "facebook_places_id": int(location.id) * 3,
            "external_source": "facebook_places",
            "name": location.name,
            "address": "",
            "city": location.city.name,
            "has_viewer_saved": False,
            "lng": location.city.longitude,
            "lat": location.city.latitude,
            "is_eligible_for_guides": True,
        }
    return extras


# Feed items


def _candidates(media_pk: int, width: int, height: int, variant: int) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "width": size,
                "height": size * height // width,
                "url": cdn.image(media_pk, size, size * height // width, variant),
            }
            for size in (1080, 750, 640, 320)
        ]
    }


def v1_media(post: Post) -> dict[str, Any]:
    """A post as the private API's feed and media-info endpoints give it (JoTucker's and Lama's rendering)."""
    user = v1_user(post.owner, with_friendship=False)
    media: dict[str, Any] = {
        **v1_media_head(post),
        "is_paid_partnership": bool(post.sponsors),
        "comment_likes_enabled": True,
        "comment_threading_enabled": True,
        "has_more_comments": post.comments > 2,
        "max_num_visible_preview_comments": 2,
        "preview_comments": [],
        "can_view_more_preview_comments": post.comments > 2,
        "comment_count": post.comments,
        "like_count": post.likes,
        "has_liked": False,
        "top_likers": [],
        "photo_of_you": False,
        "can_viewer_save": True,
        "user": user,
        "owner": user,
        "original_width": post.width,
        "original_height": post.height,
        "organic_tracking_token": f"eyJ2ZXJzaW9uIjo1{post.media_pk % 10**12}",
        "caption": None,
        "accessibility_caption": post.accessibility_caption,
    }
    if post.caption is not None:
        media["caption"] = {
            "pk": str(post.media_pk + 17),
            "user_id": int(post.owner.profile_id),
            "text": post.caption,
            "type": 1,
            "created_at": post.taken_at,
            "created_at_utc": post.taken_at,
            "content_type": "comment",
            "status": "Active",
            "bit_flags": 0,
            "did_report_as_spam": False,
            "share_enabled": False,
            "user": user,
            "is_covered": False,
            "media_id": post.media_pk,
            "private_reply_status": 0,
        }
    if post.kind == "carousel":
        media["carousel_media_count"] = post.children
        media["carousel_media"] = [
            {
                "id": f"{post.media_pk + 1 + child}_{post.owner.profile_id}",
                "pk": post.media_pk + 1 + child,
                "media_type": 1,
                "carousel_parent_id": post.media_id,
                "original_width": post.width,
                "original_height": post.height,
                "image_versions2": _candidates(post.media_pk, post.width, post.height, 10 + child),
            }
            for child in range(post.children)
        ]
    else:
        media["image_versions2"] = _candidates(post.media_pk, post.width, post.height, 3)
    if post.kind == "video":
        media.update(
            video_versions=video_versions(post.media_pk),
            video_duration=post.video_duration,
            has_audio=True,
            play_count=post.video_plays,
            ig_play_count=post.video_plays,
            view_count=post.video_views,
            number_of_qualities=3,
        )
    media.update(v1_tags_and_place(post, with_friendship=False))
    return media


def _image_versions(media_pk: int, width: int, height: int, variant: int) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "width": size,
                "height": size * height // width,
                "url": cdn.image(media_pk, size, size * height // width, variant + number),
            }
            for number, size in enumerate((width, 640, 320))
        ]
    }


def _carousel_media(post: Post) -> list[dict[str, Any]]:
    children = []
    for child in range(post.children):
        pk = post.media_pk + 1 + child
        children.append(
            {
                "id": f"{pk}_{post.owner.profile_id}",
                "pk": pk,
                "media_type": 1,
                "code": encode_shortcode(pk),
                "carousel_parent_id": post.media_id,
                "image_versions2": _image_versions(post.media_pk, post.width, post.height, 10 + child * 3),
                "original_width": post.width,
                "original_height": post.height,
                "taken_at": post.taken_at,
                "accessibility_caption": post.accessibility_caption,
            }
        )
    return children


def feed_item(post: Post) -> dict[str, Any]:
    """A v1 media item of any kind, as the user feed and media info carry it (BestSolutions' and RocketAPI's)."""
    owner = {**v1_user(post.owner), "id": post.owner.profile_id}
    item: dict[str, Any] = {
        **v1_media_head(post),
        "is_in_profile_grid": False,
        "profile_grid_control_enabled": False,
        "user": owner,
        "owner": owner,
        "can_viewer_reshare": True,
        "like_count": post.likes,
        "comment_count": post.comments,
        "has_liked": False,
        "top_likers": [],
        "caption": v1_caption(post),
        "original_width": post.width,
        "original_height": post.height,
        "accessibility_caption": post.accessibility_caption,
        "is_paid_partnership": bool(post.sponsors),
        "commerciality_status": "not_commercial",
        "comment_threading_enabled": True,
    }
    if post.kind == "carousel":
        # A carousel's pictures are its children's; the item itself has none.
        item.update(carousel_media_count=post.children, carousel_media=_carousel_media(post))
    else:
        item["image_versions2"] = _image_versions(post.media_pk, post.width, post.height, 0)
    if post.kind == "video":
        item.update(
            video_versions=video_versions(post.media_pk),
            video_duration=post.video_duration,
            has_audio=True,
            view_count=post.video_views,
            play_count=post.video_plays,
            ig_play_count=post.video_plays,
        )
    item.update(v1_tags_and_place(post))
    if post.location is not None:
        item.update(lat=post.location.city.latitude, lng=post.location.city.longitude)
    return item


# Reels (v1 clips)


def reel_item(post: Post) -> dict[str, Any]:
    owner = v1_user(post.owner)
    media: dict[str, Any] = {
        **v1_media_head(post),
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
        "video_versions": video_versions(post.media_pk),
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
            "original_sound_info": {
                "audio_asset_id": post.media_pk % 10**16,
                "original_media_id": post.media_pk,
                "duration_in_ms": int((post.video_duration or 0) * 1000),
                "is_explicit": False,
                "ig_artist": owner,
                "original_audio_title": "Original audio",
            },
            "is_shared_to_fb": False,
        },
        "sharing_friction_info": {"should_have_sharing_friction": False, "bloks_app_url": None},
        "is_paid_partnership": bool(post.sponsors),
        "comment_inform_treatment": {"should_have_inform_treatment": False, "text": ""},
    }
    media.update(v1_tags_and_place(post))
    return {"media": media}


# Stories (v1 reels_media)


def _sticker(story: Story, number: int) -> dict[str, Any]:
    """Where a sticker sits on the frame: stable per story, different per sticker."""
    offset = (story.pk // 7 + number * 13) % 40 / 100
    return {
        "x": round(0.3 + offset, 4),
        "y": round(0.25 + offset, 4),
        "z": number,
        "width": 0.42,
        "height": 0.08,
        "rotation": 0.0,
        "is_pinned": 0,
        "is_hidden": 0,
        "is_sticker": 1,
        "is_fb_sticker": 0,
    }


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
        "user": {
            "pk": int(owner.profile_id),
            "pk_id": owner.profile_id,
            "is_private": owner.is_private,
            "strong_id__": owner.profile_id,
        },
        "image_versions2": {
            "candidates": [
                {"width": w, "height": w * height // width, "url": cdn.image(story.pk, w, w * height // width, variant)}
                for variant, w in enumerate((1080, 720, 480))
            ]
        },
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
            video_versions=video_versions(story.pk, _STORY_VIDEOS),
            video_duration=story.video_duration,
            has_audio=True,
            is_dash_eligible=1,
            number_of_qualities=2,
        )
    stickers = iter(range(8))
    if story.links:
        item["story_link_stickers"] = [
            {
                **_sticker(story, next(stickers)),
                "story_link": {
                    "link_type": "web",
                    "url": f"https://l.instagram.com/?u={link}",
                    "link_title": "",
                    "display_url": link.removeprefix("https://"),
                },
            }
            for link in story.links
        ]
    if story.hashtags:
        item["story_hashtags"] = [
            {
                **_sticker(story, next(stickers)),
                "hashtag": {
                    "name": name,
                    "id": str(17_841_500_000_000_000 + seeded("hashtag", name).randrange(10**12)),
                },
            }
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
