"""The sandbox's Instagram: deterministic accounts and posts that each sandboxed provider renders in its own shape.

Everything is derived from a stable hash of the handle, profile id or shortcode, so every
provider module (and every sandbox restarted on the same day) tells the same story about
the same entity. Timestamps count back from the UTC midnight at which the world was made:
fixed for a server's lifetime, recent enough for "the last 30 days" rules to bite.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from providers.sandbox import cdn
from providers.sandbox.ids import decode_base64_number, encode_base64_number

DAY = 86_400
PAGE_SIZE = 12

# Media ids of this size are what Instagram has issued since 2023. A post's id packs its owner
# and its position in the owner's timeline, so a shortcode alone finds the post again; the
# packed number is multiplied by an odd constant modulo 2**60 (a reversible shuffle) so that
# neighbouring posts do not get neighbouring shortcodes.
MEDIA_BASE = 3_000_000_000_000_000_000
SLOTS_PER_OWNER = 10_000
_PACKED_SPACE = 2**60
# Real profile ids are far below this; above it the packing would not be reversible.
MAX_PROFILE_ID = _PACKED_SPACE // SLOTS_PER_OWNER
_SHUFFLE = 0x2545F4914F6CDD1D % _PACKED_SPACE
_UNSHUFFLE = pow(_SHUFFLE, -1, _PACKED_SPACE)

_HANDLE = re.compile(r"[a-z0-9._]{1,30}")
# Handles handed out for ids the directory never saw map straight back to that id.
_STAND_IN = re.compile(r"user_([1-9][0-9]{0,18})")

_FIRST = ("aarav", "diya", "kabir", "meera", "rohan", "sana", "vikram", "zoya", "ananya", "ishaan", "tara", "neel")
_THEME = ("travels", "eats", "fit", "studio", "clicks", "diaries", "makeup", "beats", "style", "reads", "home")
_BRANDS = ("lumora.skin", "tealeaf.co", "kettleandcrumb", "urbanloom", "brightside.audio", "monsoon.threads")
_CATEGORIES = (
    ("Digital creator", 2700),
    ("Blogger", 1700),
    ("Photographer", 2240),
    ("Artist", 1602),
    ("Public figure", 1301),
    ("Health/beauty", 2214),
    ("Clothing (Brand)", 2209),
)
_BIOS = (
    "Stories from the road",
    "Home cook, weekend baker",
    "Lifting heavy, living light",
    "Colour, light and everyday faces",
    "Books, chai and long walks",
    "Making small spaces feel big",
)
_PHRASES = (
    "Golden hour never disappoints",
    "New week, new goals",
    "Sunday reset",
    "Trying something different",
    "Behind the scenes",
    "Swipe for the full look",
    "Saved the best for last",
    "Monsoon mood",
)
_HASHTAGS = ("#travel", "#foodie", "#fitness", "#ootd", "#reels", "#india", "#weekend", "#explore", "#love")


@dataclass(frozen=True, slots=True)
class City:
    id: int
    name: str
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Location:
    id: str
    name: str
    slug: str
    city: City


_CITIES = (
    City(106377336067638, "Mumbai, Maharashtra", 19.076, 72.8777),
    City(106517799384578, "New Delhi, India", 28.6139, 77.209),
    City(111983945494775, "Bengaluru, Karnataka", 12.9716, 77.5946),
    City(108261955873986, "Hyderabad, Telangana", 17.385, 78.4867),
    City(102186159822587, "Chennai, Tamil Nadu", 13.0827, 80.2707),
    City(108151945866747, "Pune, Maharashtra", 18.5204, 73.8567),
    City(109526835738412, "Jaipur, Rajasthan", 26.9124, 75.7873),
)
_LANDMARKS = tuple(
    zip(
        (
            "Marine Drive",
            "Hauz Khas Village",
            "Cubbon Park",
            "Charminar",
            "Marina Beach",
            "Koregaon Park",
            "Hawa Mahal",
        ),
        _CITIES,
        strict=True,
    )
)


@dataclass(frozen=True, slots=True)
class Account:
    profile_id: str
    handle: str
    full_name: str
    biography: str
    followers: int
    following: int
    media_count: int
    account_type: int  # Instagram's code: 1 personal, 2 business, 3 creator
    category: str | None
    category_id: int | None
    is_private: bool
    is_verified: bool
    external_url: str
    public_email: str | None
    contact_phone: str | None
    city: City | None
    fbid: int
    profile_pic_url: str
    hd_profile_pic_url: str


@dataclass(frozen=True, slots=True)
class Tag:
    account: Account
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Post:
    owner: Account
    media_pk: int
    shortcode: str
    kind: str  # image, video or carousel
    taken_at: int
    likes: int
    comments: int
    video_views: int | None
    video_plays: int | None
    video_duration: float | None
    caption: str | None
    tags: tuple[Tag, ...]
    sponsors: tuple[Account, ...]
    location: Location | None
    width: int
    height: int
    children: int  # carousel items; 0 otherwise
    accessibility_caption: str

    @property
    def media_id(self) -> str:
        """The v1 API's media id: the media pk, an underscore, the owner's pk."""
        return f"{self.media_pk}_{self.owner.profile_id}"


def seeded(*parts: object) -> random.Random:
    """A generator seeded from a stable hash of ``parts`` (Python's hash() changes per process)."""
    digest = hashlib.blake2b("\x1f".join(str(part) for part in parts).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def encode_shortcode(media_pk: int) -> str:
    return encode_base64_number(media_pk)


def decode_shortcode(shortcode: str) -> int | None:
    if not 1 <= len(shortcode) <= 64:
        return None
    return decode_base64_number(shortcode)


def encode_cursor(tag: str, profile_id: str, position: int) -> str:
    return base64.urlsafe_b64encode(f"{tag}:{profile_id}:{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, tag: str, profile_id: str) -> int | None:
    """The position a cursor resumes at, or None if it is not one this world issued for that profile."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != tag or parts[1] != profile_id or not parts[2].isdigit():
        return None
    return int(parts[2])


def _full_name(handle: str) -> str:
    words = [word for word in re.split(r"[._0-9]+", handle) if word]
    return " ".join(word.capitalize() for word in words) or handle


class InstagramWorld:
    def __init__(self, reference: datetime | None = None) -> None:
        now = reference or datetime.now(UTC)
        self.reference = int(now.timestamp()) // DAY * DAY
        # Profile ids are a hash of the handle, so the only way back is a memory of every handle seen.
        self._handles: dict[str, str] = {}

    # Accounts

    def profile_id_for(self, handle: str) -> str:
        stand_in = _STAND_IN.fullmatch(handle)
        if stand_in and int(stand_in.group(1)) < MAX_PROFILE_ID:
            return stand_in.group(1)
        rng = seeded("profile-id", handle)
        return str(rng.randrange(1_000_000_000, 70_000_000_000))

    def handle_for(self, profile_id: str) -> str:
        return self._handles.get(profile_id) or f"user_{profile_id}"

    def account(self, handle: str) -> Account | None:
        """The account behind a handle; None when it does not exist (``missing…`` or not a valid handle)."""
        handle = handle.strip().lstrip("@").lower()
        if not _HANDLE.fullmatch(handle) or handle.startswith("missing"):
            return None
        return self._known(handle)

    def _known(self, handle: str) -> Account:
        profile_id = self.profile_id_for(handle)
        self._handles.setdefault(profile_id, handle)
        return self._build_account(profile_id, handle)

    def account_by_id(self, profile_id: str) -> Account | None:
        profile_id = profile_id.strip()
        if not profile_id.isdigit() or profile_id.startswith("0") or int(profile_id) >= MAX_PROFILE_ID:
            return None
        return self._build_account(profile_id, self.handle_for(profile_id))

    def _build_account(self, profile_id: str, handle: str) -> Account:
        rng = seeded("account", profile_id)
        followers = int(10 ** rng.uniform(2.5, 6.8))
        account_type = rng.choices((1, 2, 3), weights=(5, 2, 3))[0]
        professional = account_type != 1
        category, category_id = rng.choice(_CATEGORIES) if professional else (None, None)
        city = rng.choice(_CITIES) if professional and rng.random() < 0.7 else None
        return Account(
            profile_id=profile_id,
            handle=handle,
            full_name=_full_name(handle),
            biography=rng.choice(_BIOS),
            followers=followers,
            following=rng.randint(40, 2500),
            media_count=rng.randint(20, 80),
            account_type=account_type,
            category=category,
            category_id=category_id,
            is_private=handle.startswith("private"),
            is_verified=followers > 1_000_000 and rng.random() < 0.6,
            external_url=f"https://linktr.ee/{handle}" if rng.random() < 0.5 else "",
            public_email=f"{handle.replace('.', '')}@example.com" if professional else None,
            contact_phone=f"+91 9{rng.randrange(10**8, 10**9)}" if professional and rng.random() < 0.5 else None,
            city=city,
            fbid=17_841_400_000_000_000 + int(profile_id) % 10**12,
            profile_pic_url=cdn.profile_picture(profile_id, 150),
            hd_profile_pic_url=cdn.profile_picture(profile_id, 1080),
        )

    # Posts

    def _times(self, owner: Account) -> list[int]:
        """Publish times, newest first: the newest within two days of the reference, then every 2-4 days."""
        rng = seeded("times", owner.profile_id)
        moment = self.reference - rng.randrange(0, 2 * DAY)
        times = []
        for _ in range(owner.media_count):
            times.append(moment)
            moment -= rng.randrange(2 * DAY, 4 * DAY)
        return times

    def _kinds(self, owner: Account) -> list[str]:
        rng = seeded("kinds", owner.profile_id)
        return rng.choices(("image", "video", "carousel"), weights=(45, 30, 25), k=owner.media_count)

    def timeline(self, owner: Account, start: int, count: int = PAGE_SIZE) -> list[Post]:
        if owner.is_private:
            return []
        times, kinds = self._times(owner), self._kinds(owner)
        return [
            self._timeline_post(owner, index, times[index], kinds[index])
            for index in range(start, min(start + count, owner.media_count))
        ]

    def reels(self, owner: Account, start: int, count: int = PAGE_SIZE) -> tuple[list[Post], int | None]:
        """Video posts from timeline position ``start`` on, and the position the next page starts at."""
        if owner.is_private:
            return [], None
        times, kinds = self._times(owner), self._kinds(owner)
        positions = [index for index in range(start, owner.media_count) if kinds[index] == "video"]
        page = [self._timeline_post(owner, index, times[index], "video") for index in positions[:count]]
        return page, (positions[count] if len(positions) > count else None)

    def post(self, shortcode: str) -> Post | None:
        """The post behind a shortcode: a timeline post when the shortcode is one, else a stand-alone old post."""
        if shortcode.startswith("missing"):
            return None
        media_pk = decode_shortcode(shortcode)
        if media_pk is None:
            return None
        if MEDIA_BASE <= media_pk < MEDIA_BASE + _PACKED_SPACE and encode_shortcode(media_pk) == shortcode:
            owner_id, index = divmod((media_pk - MEDIA_BASE) * _UNSHUFFLE % _PACKED_SPACE, SLOTS_PER_OWNER)
            owner = self.account_by_id(str(owner_id))
            if owner is not None and index < owner.media_count:
                return self._timeline_post(owner, index, self._times(owner)[index], self._kinds(owner)[index])
        rng = seeded("stand-alone", shortcode)
        owner = self._known(f"{rng.choice(_FIRST)}.{rng.choice(_THEME)}")
        taken_at = self.reference - rng.randrange(30 * DAY, 900 * DAY)
        kind = rng.choice(("image", "video", "carousel"))
        return self._build_post(owner, media_pk, shortcode, taken_at, kind, rng)

    def _timeline_post(self, owner: Account, index: int, taken_at: int, kind: str) -> Post:
        media_pk = MEDIA_BASE + (int(owner.profile_id) * SLOTS_PER_OWNER + index) * _SHUFFLE % _PACKED_SPACE
        rng = seeded("post", media_pk)
        return self._build_post(owner, media_pk, encode_shortcode(media_pk), taken_at, kind, rng)

    def _build_post(
        self, owner: Account, media_pk: int, shortcode: str, taken_at: int, kind: str, rng: random.Random
    ) -> Post:
        likes = int(owner.followers * rng.uniform(0.01, 0.09)) + rng.randint(0, 30)
        comments = int(likes * rng.uniform(0.004, 0.04))
        plays = views = duration = None
        if kind == "video":
            plays = int(owner.followers * rng.uniform(0.4, 3.5)) + rng.randint(50, 500)
            views = int(plays * rng.uniform(0.45, 0.7))
            duration = round(rng.uniform(5.0, 90.0), 3)
        caption = None
        if rng.random() >= 0.1:
            caption = " ".join([rng.choice(_PHRASES), *rng.sample(_HASHTAGS, rng.randint(0, 4))])
        tags: tuple[Tag, ...] = ()
        if rng.random() < 0.25:
            tags = tuple(
                Tag(
                    self._known(f"{rng.choice(_FIRST)}.{rng.choice(_THEME)}"),
                    round(rng.random(), 4),
                    round(rng.random(), 4),
                )
                for _ in range(rng.randint(1, 3))
            )
        sponsors: tuple[Account, ...] = ()
        if rng.random() < 0.08:
            sponsors = (self._known(rng.choice(_BRANDS)),)
        location = None
        if rng.random() < 0.3:
            place = rng.randrange(len(_LANDMARKS))
            name, city = _LANDMARKS[place]
            location = Location(str(200_000_000 + place * 7919), name, name.lower().replace(" ", "-"), city)
        width, height = {"image": (1080, 1350), "video": (1080, 1920), "carousel": (1080, 1080)}[kind]
        return Post(
            owner=owner,
            media_pk=media_pk,
            shortcode=shortcode,
            kind=kind,
            taken_at=taken_at,
            likes=likes,
            comments=comments,
            video_views=views,
            video_plays=plays,
            video_duration=duration,
            caption=caption,
            tags=tags,
            sponsors=sponsors,
            location=location,
            width=width,
            height=height,
            children=rng.randint(2, 6) if kind == "carousel" else 0,
            accessibility_caption=f"Photo by {owner.full_name} on {_day(taken_at)}.",
        )


def _day(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%B %d, %Y")
