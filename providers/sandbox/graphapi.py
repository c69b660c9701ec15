"""The Instagram Graph API in the sandbox: business discovery, an account's own node, media, story and
audience insights, debug_token.

Accounts are InstagramWorld's (the same handle is the same account through every provider), seen as
business accounts. Another account is read through business discovery, whose media are ShadowIGMedia:
they answer IG Media's public fields only, and a name that is no IG Media field (user_id) is refused with
Graph's #100 naming the node type; business discovery has no stories edge (refused with #10). An account's
own node (its Graph id, with any token) answers its fields, its media as IGMedia (owner included) and its
stories; its username is the handle the world knows for it, so a handle never seen reads as ``user_<id>``.

Graph names media by its own 17-digit ids, which the routes remember as they hand them out so that
insights of a listed post agree with its like and comment counts; a Graph-style id never handed out still
gets stable insights of its own, while any other id (an Instagram media pk) does not exist. Stories are
drawn per account and day.

Refusals are Graph's: HTTP 400 with ``{"error": {message, type, code, error_subcode, fbtrace_id}}``.
Tokens starting with ``expired`` are refused with code 190; those starting with ``noscope`` lack
``instagram_manage_insights``, so insights are refused as Graph does then, and debug_token says so; those
starting with ``dataexpired`` are valid, but debug_token says their data access lapsed a month ago.
Handles starting with ``missing`` get code 110.

Every Graph API version is answered alike (Graph serves a call to an expired version as one to the oldest
it still has, and the metric retirements below apply to every version). Media insights serve each media
product type the metrics Meta's reference lists for it today: a retired metric (impressions, plays,
video_views, engagement…) is refused as Graph does, with #100 listing the metrics it knows, and a metric the
medium's type does not serve with #100 naming it. The knob ``graph_refused_metrics`` refuses more, like
Graph refusing a metric it serves elsewhere, so the client's retry without them can be exercised.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from providers.sandbox import cdn
from providers.sandbox.instagram import (
    DAY,
    Account,
    InstagramWorld,
    Post,
    decode_cursor,
    encode_cursor,
    seeded,
)
from providers.sandbox.state import SandboxState

PREFIX = "/graphapi"
MEDIA_PAGE_SIZE = 25
_MEMORY = 200_000
GRAPH_TIME = "%Y-%m-%dT%H:%M:%S%z"
APP_ID = "918273645501928"
# Business accounts' Graph ids: the world's fbid is 17841400000000000 plus the profile id.
_FBID_BASE = 17_841_400_000_000_000
_MEDIA_TYPE = {"image": "IMAGE", "video": "VIDEO", "carousel": "CAROUSEL_ALBUM"}
_PRODUCT_TYPE = {"image": "FEED", "video": "REELS", "carousel": "FEED"}
_SCOPES = (
    "instagram_basic",
    "instagram_manage_insights",
    "pages_read_engagement",
    "pages_show_list",
    "business_management",
    "public_profile",
)

_INSIGHT_TITLES = {
    "views": ("Views", "The number of times the media was played or displayed."),
    "reach": ("Reach", "The number of unique accounts that saw the media at least once."),
    "saved": ("Saves", "The number of saves of the media."),
    "likes": ("Likes", "The number of likes on the media."),
    "comments": ("Comments", "The number of comments on the media."),
    "shares": ("Shares", "The number of shares of the media."),
    "total_interactions": ("Interactions", "Likes, saves, comments and shares on the media, minus the ones undone."),
    "replies": ("Replies", "The number of replies to the story."),
    "follows": ("Follows", "The number of accounts that started following after seeing the media."),
    "profile_visits": ("Profile visits", "The number of times the profile was visited from the media."),
    "profile_activity": ("Profile activity", "The number of actions taken on the profile after seeing the media."),
    "navigation": ("Navigation", "The number of navigation actions taken on the story."),
    "ig_reels_avg_watch_time": ("Average watch time", "The average time, in milliseconds, the reel was watched."),
    "ig_reels_video_view_total_time": ("Watch time", "The total time, in milliseconds, the reel was watched."),
}
# What Meta's Instagram Media Insights reference lists for each media product type (checked 2026-12-03).
_SERVED: dict[str, tuple[str, ...]] = {
    "FEED": (
        "views",
        "reach",
        "likes",
        "comments",
        "saved",
        "shares",
        "total_interactions",
        "follows",
        "profile_visits",
        "profile_activity",
    ),
    "REELS": (
        "views",
        "reach",
        "likes",
        "comments",
        "saved",
        "shares",
        "total_interactions",
        "ig_reels_avg_watch_time",
        "ig_reels_video_view_total_time",
    ),
    "STORY": (
        "views",
        "reach",
        "replies",
        "shares",
        "total_interactions",
        "follows",
        "profile_visits",
        "profile_activity",
        "navigation",
    ),
}
# Every media metric Graph knows today, listed as Graph lists them when asked for one it does not know.
_MEDIA_METRICS = tuple(sorted({name for names in _SERVED.values() for name in names}))
# User insights Meta retired for every version on 2025-04-21, refused with the message Graph gives for them.
_RETIRED_USER_METRICS = frozenset({"impressions"})
_AUDIENCE = {
    # metric: (title, description noun, share of the followers it counts)
    "follower_demographics": ("Follower demographics", "followers", 1.0),
    "reached_audience_demographics": ("Reached audience demographics", "the reached audience", 0.55),
    "engaged_audience_demographics": ("Engaged audience demographics", "the engaged audience", 0.07),
}
_BREAKDOWNS = {
    "country": ["country"],
    "city": ["city"],
    "age": ["age"],
    "gender": ["gender"],
    "gender,age": ["gender", "age"],
    "age,gender": ["age", "gender"],
}
# The only timeframes demographics take today.
_TIMEFRAMES = ("this_week", "this_month")
# Each breakdown's values with their typical weight for an Indian creator's audience.
_SPREADS: dict[str, dict[str, float]] = {
    "country": {
        "IN": 8.0,
        "US": 1.0,
        "AE": 0.6,
        "GB": 0.5,
        "BD": 0.4,
        "NP": 0.3,
        "SA": 0.3,
        "CA": 0.3,
        "AU": 0.2,
        "SG": 0.2,
        "PK": 0.2,
        "DE": 0.15,
    },
    "city": {
        "Mumbai, Maharashtra": 3.0,
        "Delhi, Delhi": 3.0,
        "Bangalore, Karnataka": 2.0,
        "Hyderabad, Telangana": 1.5,
        "Chennai, Tamil Nadu": 1.2,
        "Pune, Maharashtra": 1.2,
        "Kolkata, West Bengal": 1.0,
        "Jaipur, Rajasthan": 0.6,
        "Ahmedabad, Gujarat": 0.6,
        "Lucknow, Uttar Pradesh": 0.5,
    },
    "age": {"13-17": 0.4, "18-24": 3.0, "25-34": 3.5, "35-44": 1.5, "45-54": 0.6, "55-64": 0.25, "65+": 0.15},
    "gender": {"F": 1.0, "M": 1.0, "U": 0.1},
}
_NAVIGATION = (
    "tap_forward",
    "tap_back",
    "tap_exit",
    "swipe_forward",
    "automatic_forward",
    "swipe_back",
    "swipe_up",
    "swipe_down",
)

# Graph's own media ids; anything else (an Instagram media pk, a shortcode) is no object Graph knows.
_GRAPH_MEDIA_ID = re.compile(r"1[78][0-9]{15}")
_VERSION = re.compile(r"v[0-9]+\.[0-9]+")
_FIELD = re.compile(r"([a-z_]+)((?:\.[a-z_]+\([^(){}]*\))*)(?:\{(.*)\})?", re.DOTALL)
_MODIFIER = re.compile(r"\.([a-z_]+)\(([^(){}]*)\)")
# IG Media's fields and edges (IG Media reference); Graph refuses any other name with #100.
_IG_MEDIA_FIELDS = frozenset(
    {
        "boost_eligibility_info",
        "caption",
        "children",
        "collaborators",
        "comments",
        "comments_count",
        "copyright_check_information",
        "id",
        "ig_id",
        "insights",
        "is_comment_enabled",
        "is_shared_to_feed",
        "legacy_instagram_media_id",
        "like_count",
        "media_product_type",
        "media_type",
        "media_url",
        "owner",
        "permalink",
        "shortcode",
        "thumbnail_url",
        "timestamp",
        "username",
    }
)
# The public ones, all a medium of another account answers with: owner, for one, only goes to the owner.
_PUBLIC_MEDIA_FIELDS = frozenset(
    {
        "caption",
        "children",
        "comments_count",
        "id",
        "like_count",
        "media_product_type",
        "media_type",
        "media_url",
        "permalink",
        "timestamp",
        "username",
    }
)
_OWN_MEDIA = "IGMedia"
_DISCOVERED_MEDIA = "ShadowIGMedia"
_SERVED_MEDIA_FIELDS = {_OWN_MEDIA: _IG_MEDIA_FIELDS, _DISCOVERED_MEDIA: _PUBLIC_MEDIA_FIELDS}


# Field expressions: business_discovery.username(tara_reads){id,media.after(X){id,caption}}


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    modifiers: dict[str, str]
    subfields: tuple[Field, ...]

    def sub(self, name: str) -> Field | None:
        return next((field for field in self.subfields if field.name == name), None)


def _split(expression: str) -> list[str]:
    """Top-level comma-separated parts, braces and parentheses kept whole."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in expression:
        depth += (char in "({") - (char in ")}")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def parse_fields(expression: str) -> tuple[Field, ...] | None:
    """The fields of a Graph ``fields`` expression, or None when it does not parse."""
    fields = []
    for part in _split(expression):
        match = _FIELD.fullmatch(part)
        if match is None:
            return None
        subfields: tuple[Field, ...] = ()
        if match.group(3) is not None:
            parsed = parse_fields(match.group(3))
            if parsed is None:
                return None
            subfields = parsed
        fields.append(Field(match.group(1), dict(_MODIFIER.findall(match.group(2))), subfields))
    return tuple(fields)


def _only(node: dict[str, Any], field: Field, served: frozenset[str] | None = None) -> dict[str, Any]:
    """``node`` cut down to the subfields asked for (and ``served``, when given), as Graph answers only what
    was asked and it may give; a node's id always comes."""
    asked = {sub.name for sub in field.subfields} | {"id"}
    return {
        name: value
        for name, value in node.items()
        if name in asked and (served is None or name in served) and value is not None
    }


def _nonexisting_field(field: Field, node_type: str) -> JSONResponse | None:
    unknown = next((sub.name for sub in field.subfields if sub.name not in _IG_MEDIA_FIELDS), None)
    if unknown is None:
        return None
    return _invalid(f"Tried accessing nonexisting field ({unknown}) on node type ({node_type})")


# Ids and times


def _digest(*parts: object) -> bytes:
    return hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).digest()


def graph_media_id(media_pk: int) -> str:
    return str(17_850_000_000_000_000 + int.from_bytes(_digest("graph-media", media_pk)) % 150_000_000_000_000)


def _graph_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime(GRAPH_TIME)


def _trace_id(*parts: object) -> str:
    return "A" + _digest(*parts).hex()[:21]


@dataclass(frozen=True, slots=True)
class Story:
    owner: Account
    graph_id: str
    media_pk: int
    is_video: bool
    taken_at: int
    reach: int


# Answers


def media_item(post: Post, graph_id: str) -> dict[str, Any]:
    # The same URLs the other providers give: a carousel shows its first child.
    first_image = cdn.image(post.media_pk, post.width, post.height, variant=10 if post.kind == "carousel" else 0)
    return {
        "id": graph_id,
        "owner": {"id": str(post.owner.fbid)},
        "username": post.owner.handle,
        "comments_count": post.comments,
        "like_count": post.likes,
        "media_type": _MEDIA_TYPE[post.kind],
        "media_product_type": _PRODUCT_TYPE[post.kind],
        "media_url": cdn.video(post.media_pk, 720, 1280) if post.kind == "video" else first_image,
        "caption": post.caption,
        "timestamp": _graph_time(post.taken_at),
        "permalink": f"https://www.instagram.com/p/{post.shortcode}/",
    }


def _account_node(account: Account) -> dict[str, Any]:
    return {
        "id": str(account.fbid),
        "ig_id": int(account.profile_id),
        "name": account.full_name,
        "website": account.external_url or None,
        "followers_count": account.followers,
        "follows_count": account.following,
        "profile_picture_url": account.profile_pic_url,
        "username": account.handle,
        "biography": account.biography,
        "media_count": account.media_count,
    }


def story_item(story: Story) -> dict[str, Any]:
    return {
        "id": story.graph_id,
        "media_type": "VIDEO" if story.is_video else "IMAGE",
        "media_product_type": "STORY",
        "media_url": (
            cdn.video(story.media_pk, 720, 1280) if story.is_video else cdn.image(story.media_pk, 1080, 1920)
        ),
        "owner": {"id": str(story.owner.fbid)},
        "permalink": f"https://www.instagram.com/stories/{story.owner.handle}/{story.media_pk}/",
        "timestamp": _graph_time(story.taken_at),
        "username": story.owner.handle,
    }


def _insight(object_id: str, name: str, value: float, **extra: Any) -> dict[str, Any]:
    title, description = _INSIGHT_TITLES[name]
    entry: dict[str, Any] = {
        "name": name,
        "period": "lifetime",
        "values": [{"value": value}],
        "title": title,
        "description": description,
        "id": f"{object_id}/insights/{name}/lifetime",
    }
    entry.update(extra)
    return entry


def _error(
    message: str,
    code: int,
    *,
    kind: str = "OAuthException",
    subcode: int | None = None,
    trace: object = "",
    **extra: Any,
) -> JSONResponse:
    error: dict[str, Any] = {"message": message, "type": kind, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error.update(extra)
    error["fbtrace_id"] = _trace_id(message, trace)
    return JSONResponse({"error": error}, status_code=400)


def _missing_object(object_id: str) -> JSONResponse:
    return _error(
        f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be loaded due to missing "
        "permissions, or does not support this operation. Please read the Graph API documentation at "
        "https://developers.facebook.com/docs/graph-api",
        100,
        kind="GraphMethodException",
        subcode=33,
        trace=object_id,
    )


def _invalid(message: str) -> JSONResponse:
    return _error(f"(#100) {message}", 100, trace=message)


def _is_account(object_id: str) -> bool:
    return object_id.isdigit() and 0 <= int(object_id) - _FBID_BASE < 10**12


def _no_longer_supported(metric: str) -> JSONResponse:
    return _invalid(
        f"Starting from version 22 and above, the {metric} metric is no longer supported for the "
        "queried user. Please refer to the documentation at "
        "https://developers.facebook.com/docs/instagram-api/reference/ig-user/insights for a list of "
        "supported metrics."
    )


# Routes


class GraphApiRoutes:
    def __init__(self, world: InstagramWorld, state: SandboxState) -> None:
        self._world = world
        self._state = state
        # Graph ids handed out, so that insights can find what they describe; each memory starts over
        # when full, and a forgotten id still gets stable insights, only not tied to its post.
        self._media: dict[str, Post] = {}
        self._stories: dict[str, Story] = {}

    def mount(self) -> Mount:
        return Mount(
            PREFIX,
            routes=[
                Route("/{version}/debug_token", self.debug_token),
                Route("/{version}/{object_id}/insights", self.insights),
                Route("/{version}/{user_id}", self.user),
            ],
        )

    def _refusal(self, request: Request) -> JSONResponse | None:
        version = request.path_params["version"]
        if not _VERSION.fullmatch(version):
            return _error(f"Unknown path components: /{version}", 2500, trace=version)
        token = request.query_params.get("access_token")
        if not token:
            return _error("An access token is required to request this resource.", 104)
        if token.startswith("expired"):
            return _error(self._expired_message(), 190, subcode=463, trace=token)
        return None

    def _expired_message(self) -> str:
        expired = datetime.fromtimestamp(self._world.reference - 2 * DAY, UTC)
        now = datetime.fromtimestamp(self._world.reference, UTC)
        return (
            f"Error validating access token: Session has expired on {expired:%A, %d-%b-%y %H:%M:%S} UTC. "
            f"The current time is {now:%A, %d-%b-%y %H:%M:%S} UTC."
        )

    async def debug_token(self, request: Request) -> JSONResponse:
        query = request.query_params
        if refusal := self._refusal(request):
            return refusal
        token = query.get("input_token")
        if not token:
            return _invalid("The parameter input_token is required")
        rng = seeded("graph-token", token)
        reference = self._world.reference
        scopes = [
            scope for scope in _SCOPES if not (token.startswith("noscope") and scope == "instagram_manage_insights")
        ]
        page_id, ig_user_id = str(10**14 + rng.randrange(10**14)), str(_FBID_BASE + rng.randrange(10**11))
        data: dict[str, Any] = {
            "app_id": APP_ID,
            "type": "USER",
            "application": "Beat",
            "data_access_expires_at": reference + 90 * DAY - rng.randrange(DAY),
            "expires_at": reference + 60 * DAY - rng.randrange(DAY),
            "is_valid": True,
            "issued_at": reference - rng.randrange(DAY, 30 * DAY),
            "scopes": scopes,
            "granular_scopes": [
                {"scope": scope, "target_ids": [ig_user_id if scope.startswith("instagram") else page_id]}
                for scope in scopes
                if scope.startswith(("instagram", "pages"))
            ],
            "user_id": str(10**16 + rng.randrange(10**16)),
        }
        if token.startswith("dataexpired"):
            # Valid, but its 90-day data access lapsed over a month ago (Graph keeps answering debug_token).
            data.update(data_access_expires_at=reference - 30 * DAY)
        if token.startswith("expired"):
            data.update(
                is_valid=False,
                expires_at=reference - 2 * DAY,
                error={"code": 190, "message": self._expired_message(), "subcode": 463},
            )
        return JSONResponse({"data": data})

    # Accounts: another one through business discovery, the token's own one directly

    async def user(self, request: Request) -> JSONResponse:
        query = request.query_params
        if refusal := self._refusal(request):
            return refusal
        user_id = request.path_params["user_id"]
        if not user_id.isdigit():
            return _missing_object(user_id)
        fields = parse_fields(query.get("fields", ""))
        if fields is None:
            return _invalid(f"Syntax error in the fields expression {query.get('fields')!r}")
        discovery = next((field for field in fields if field.name == "business_discovery"), None)
        if discovery is not None:
            return self._discovery(user_id, discovery)
        if not fields:
            return JSONResponse({"id": user_id})
        return self._own_account(user_id, Field("", {}, fields))

    def _discovery(self, user_id: str, discovery: Field) -> JSONResponse:
        handle = discovery.modifiers.get("username", "")
        account = self._world.account(handle)
        if account is None:
            return _error(
                "Invalid user id",
                110,
                subcode=2207013,
                trace=handle,
                is_transient=False,
                error_user_title="Cannot find User",
                error_user_msg=f"The user with username: {handle} cannot be found.",
            )
        if discovery.sub("stories"):
            return _error("(#10) Application does not have permission for this action", 10, trace=handle)
        answer = _only(_account_node(account), discovery)
        if media := discovery.sub("media"):
            edge = self._media_edge(account, media, _DISCOVERED_MEDIA)
            if isinstance(edge, JSONResponse):
                return edge
            answer["media"] = edge
        return JSONResponse({"business_discovery": answer, "id": user_id})

    def _own_account(self, user_id: str, root: Field) -> JSONResponse:
        profile_id = int(user_id) - _FBID_BASE
        account = self._world.account_by_id(str(profile_id)) if _is_account(user_id) else None
        if account is None:
            return _missing_object(user_id)
        answer = _only(_account_node(account), root)
        if media := root.sub("media"):
            edge = self._media_edge(account, media, _OWN_MEDIA)
            if isinstance(edge, JSONResponse):
                return edge
            answer["media"] = edge
        if stories := root.sub("stories"):
            if refusal := _nonexisting_field(stories, _OWN_MEDIA):
                return refusal
            answer["stories"] = {"data": [_only(story_item(story), stories) for story in self._stories_of(account)]}
        return JSONResponse(answer)

    def _media_edge(self, account: Account, media: Field, node_type: str) -> dict[str, Any] | JSONResponse:
        if refusal := _nonexisting_field(media, node_type):
            return refusal
        start = 0
        if after := media.modifiers.get("after"):
            resumed = decode_cursor(after, "graph-media", account.profile_id)
            if resumed is None:
                return _invalid("Invalid cursor for the media edge")
            start = resumed
        posts = self._world.timeline(account, start, MEDIA_PAGE_SIZE)
        data = []
        for post in posts:
            graph_id = graph_media_id(post.media_pk)
            _remember(self._media, graph_id, post)
            data.append(_only(media_item(post, graph_id), media, _SERVED_MEDIA_FIELDS[node_type]))
        edge: dict[str, Any] = {"data": data}
        following = start + len(posts)
        if posts:
            # Like Graph's business discovery, only an edge with more to come carries an "after" cursor.
            cursors = {"before": encode_cursor("graph-before", account.profile_id, start)}
            if following < account.media_count:
                cursors["after"] = encode_cursor("graph-media", account.profile_id, following)
            edge["paging"] = {"cursors": cursors}
        return edge

    def _stories_of(self, account: Account) -> list[Story]:
        """The account's live stories: none to five, posted in the day before the world's reference."""
        rng = seeded("graph-stories", account.profile_id, self._world.reference)
        stories = []
        for _ in range(rng.choice((0, 1, 2, 3, 3, 4, 5))):
            media_pk = 3_100_000_000_000_000_000 + rng.randrange(10**17)
            story = Story(
                owner=account,
                graph_id=graph_media_id(media_pk),
                media_pk=media_pk,
                is_video=rng.random() < 0.4,
                taken_at=self._world.reference - rng.randrange(60, DAY),
                reach=max(3, int(account.followers * rng.uniform(0.03, 0.25))),
            )
            _remember(self._stories, story.graph_id, story)
            stories.append(story)
        return sorted(stories, key=lambda story: story.taken_at, reverse=True)

    # Insights: media, stories and the account's audience share Graph's /<id>/insights path

    async def insights(self, request: Request) -> JSONResponse:
        if refusal := self._refusal(request):
            return refusal
        query = request.query_params
        object_id = request.path_params["object_id"]
        if _is_account(object_id):
            return self._audience_insights(query, object_id)
        # Without instagram_manage_insights Graph cannot load the media, and says it does not exist.
        if not _GRAPH_MEDIA_ID.fullmatch(object_id) or query["access_token"].startswith("noscope"):
            return _missing_object(object_id)
        metrics = [name.strip() for name in query.get("metric", "").split(",") if name.strip()]
        product_type = self._product_type(object_id)
        if refusal := self._unserved(metrics, product_type):
            return refusal
        if product_type == "STORY":
            return self._story_answer(object_id, metrics, query.get("breakdown"))
        values = self._media_values(object_id)
        return JSONResponse({"data": [_insight(object_id, name, values[name]) for name in metrics]})

    def _product_type(self, media_id: str) -> str:
        if media_id in self._stories:
            return "STORY"
        if post := self._media.get(media_id):
            return _PRODUCT_TYPE[post.kind]
        # An id never handed out (or forgotten): a feed post or a reel of its own, never a story, which Graph
        # names only in an account's stories edge.
        return seeded("graph-product-type", media_id).choice(("FEED", "FEED", "REELS"))

    def _unserved(self, metrics: list[str], product_type: str) -> JSONResponse | None:
        if not metrics:
            return _invalid("The parameter metric is required")
        unknown = next((index for index, name in enumerate(metrics) if name not in _MEDIA_METRICS), None)
        if unknown is not None:
            return _invalid(f"metric[{unknown}] must be one of the following values: {', '.join(_MEDIA_METRICS)}")
        refused = set(self._state.config.graph_refused_metrics)
        unserved = [name for name in metrics if name not in _SERVED[product_type] or name in refused]
        if unserved:
            return _invalid(
                f"The Media Insights API does not support the {', '.join(unserved)} metric for this media product type."
            )
        return None

    def _media_values(self, media_id: str) -> dict[str, int]:
        rng = seeded("graph-media-insights", media_id)
        post = self._media.get(media_id)
        followers = post.owner.followers if post else int(10 ** rng.uniform(3, 6))
        likes = post.likes if post else int(followers * rng.uniform(0.01, 0.09))
        comments = post.comments if post else int(likes * rng.uniform(0.004, 0.04))
        reach = max(likes + comments, int(followers * rng.uniform(0.15, 0.6)))
        saved, shares = int(likes * rng.uniform(0.01, 0.08)), int(likes * rng.uniform(0.005, 0.05))
        # A reel's views are its plays, replays included; a picture's every time it was shown.
        views = post.video_plays if post and post.video_plays else int(reach * rng.uniform(1.1, 1.7))
        average_watch = rng.randint(2_000, 25_000)
        return {
            "views": views,
            "likes": likes,
            "comments": comments,
            "reach": reach,
            "saved": saved,
            "shares": shares,
            "total_interactions": likes + comments + saved + shares,
            "follows": int(reach * rng.uniform(0.0, 0.01)),
            "profile_visits": int(reach * rng.uniform(0.01, 0.05)),
            "profile_activity": int(reach * rng.uniform(0.0, 0.02)),
            "ig_reels_avg_watch_time": average_watch,
            "ig_reels_video_view_total_time": average_watch * views,
        }

    def _story_answer(self, story_id: str, metrics: list[str], breakdown: str | None) -> JSONResponse:
        values, actions = self._story_values(story_id)
        data = []
        for name in metrics:
            if name == "navigation" and breakdown == "story_navigation_action_type":
                results = [{"dimension_values": [action], "value": count} for action, count in actions.items() if count]
                split = {"dimension_keys": ["story_navigation_action_type"], "results": results}
                entry = _insight(
                    story_id, name, values[name], total_value={"value": values[name], "breakdowns": [split]}
                )
                del entry["values"]
                data.append(entry)
            else:
                data.append(_insight(story_id, name, values[name]))
        return JSONResponse({"data": data})

    def _story_values(self, story_id: str) -> tuple[dict[str, int], dict[str, int]]:
        rng = seeded("graph-story-insights", story_id)
        story = self._stories.get(story_id)
        reach = story.reach if story else rng.randint(20, 5000)
        actions = {
            "tap_forward": int(reach * rng.uniform(0.4, 0.9)),
            "tap_back": int(reach * rng.uniform(0.0, 0.1)),
            "tap_exit": int(reach * rng.uniform(0.02, 0.15)),
            "swipe_forward": int(reach * rng.uniform(0.0, 0.1)),
            "automatic_forward": int(reach * rng.uniform(0.05, 0.3)),
            # Rare gestures: often none at all, and Graph then leaves them out.
            "swipe_back": rng.choice((0, 0, 1, 2)),
            "swipe_up": rng.choice((0, 0, 0, 1)),
            "swipe_down": rng.choice((0, 1, 3)),
        }
        replies, shares = rng.randint(0, 12), rng.randint(0, 10)
        values = {
            "views": int(reach * rng.uniform(1.05, 1.4)),
            "reach": reach,
            "replies": replies,
            "shares": shares,
            "total_interactions": replies + shares,
            "follows": rng.randint(0, 5),
            "profile_visits": int(reach * rng.uniform(0.0, 0.04)),
            "profile_activity": rng.randint(0, 6),
            "navigation": sum(actions.values()),
        }
        return values, actions

    def _audience_insights(self, query: QueryParams, user_id: str) -> JSONResponse:
        if query["access_token"].startswith("noscope"):
            return _error("(#10) Application does not have permission for this action", 10, trace=user_id)
        metric = query.get("metric", "")
        breakdown = query.get("breakdown", "").replace(" ", "")
        if metric in _RETIRED_USER_METRICS or metric in self._state.config.graph_refused_metrics:
            return _no_longer_supported(metric)
        if metric not in _AUDIENCE:
            return _invalid(f"metric[0] must be one of the following values: {', '.join(_AUDIENCE)}")
        if query.get("metric_type") != "total_value":
            return _invalid(
                f"The following metrics ({metric}) should be specified with parameter metric_type=total_value"
            )
        if breakdown not in _BREAKDOWNS:
            return _invalid(f"breakdown must be one of the following values: {', '.join(_BREAKDOWNS)}")
        timeframe = query.get("timeframe")
        if (timeframe is not None or metric != "follower_demographics") and timeframe not in _TIMEFRAMES:
            return _invalid(f"timeframe must be one of the following values: {', '.join(_TIMEFRAMES)}")
        title, noun, share = _AUDIENCE[metric]
        results = self._audience(user_id, metric, _BREAKDOWNS[breakdown], share)
        entry = {
            "name": metric,
            "period": "lifetime",
            "title": title,
            "description": f"The demographic characteristics of {noun}, including countries, cities and gender "
            "distribution.",
            "total_value": {"breakdowns": [{"dimension_keys": _BREAKDOWNS[breakdown], "results": results}]},
            "id": f"{user_id}/insights/{metric}/lifetime",
        }
        return JSONResponse({"data": [entry]})

    def _audience(self, user_id: str, metric: str, keys: list[str], share: float) -> list[dict[str, Any]]:
        """Breakdown results: each metric its own sizes (engaged < reached < followers) and its own spread."""
        profile_id = int(user_id) - _FBID_BASE
        account = self._world.account_by_id(str(profile_id)) if 0 < profile_id < 10**12 else None
        followers = account.followers if account else int(10 ** seeded("graph-followers", user_id).uniform(3, 6))
        total = max(1, int(followers * share))
        rng = seeded("graph-audience", user_id, metric)
        weights = {
            key: {value: weight * rng.uniform(0.5, 1.5) for value, weight in _SPREADS[key].items()} for key in keys
        }
        sums = {key: sum(weights[key].values()) for key in keys}
        results = []
        for combination in itertools.product(*(weights[key] for key in keys)):
            portion = 1.0
            for key, value in zip(keys, combination, strict=True):
                portion *= weights[key][value] / sums[key]
            if count := int(total * portion):
                results.append({"dimension_values": list(combination), "value": count})
        return results


def _remember(memory: dict[str, Any], graph_id: str, item: Any) -> None:
    if len(memory) >= _MEMORY:
        memory.clear()
    memory[graph_id] = item
