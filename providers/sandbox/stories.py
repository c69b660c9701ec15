"""The sandbox's stories and tags: what an InstagramWorld account shows beyond its own timeline.

Stories follow a posting schedule that is a pure function of the account and the UTC day
(0-4 a day), so the active ones at any moment (posted in the last 24 hours, at most 8) are
the same on every sandbox, and roll off 24 hours after they were posted as real ones do.
Tagged posts are other accounts' timeline posts, each carrying a tag of the account.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from providers.sandbox.instagram import (
    DAY,
    PAGE_SIZE,
    Account,
    InstagramWorld,
    Post,
    Tag,
    seeded,
)

# Story pks sit above every timeline post's (MEDIA_BASE + 2**60), so the two never collide.
STORY_BASE = 4_200_000_000_000_000_000
STORIES_PER_DAY = (0, 1, 2, 3, 4)
_STORIES_PER_DAY_WEIGHTS = (3, 3, 2, 1, 1)

_STORY_HASHTAGS = ("travel", "foodie", "weekend", "ootd", "gymtime", "mumbai", "bookstagram", "sundayvibes")
_STORY_FRIENDS = ("aarav.travels", "diya.eats", "kabir.fit", "meera.makeup", "rohan.clicks", "zoya.style")
_STORY_BRANDS = ("lumora.skin", "tealeaf.co", "urbanloom", "brightside.audio")
# Tagged posts are other people's, picked from the same kind of handles the world makes.
_TAGGERS_FIRST = ("aarav", "diya", "kabir", "meera", "rohan", "sana", "vikram", "zoya")
_TAGGERS_THEME = ("travels", "eats", "fit", "studio", "clicks", "diaries", "style")


@dataclass(frozen=True, slots=True)
class Story:
    owner: Account
    pk: int
    kind: str  # image or video
    taken_at: int
    video_duration: float | None
    links: tuple[str, ...]
    hashtags: tuple[str, ...]
    mentions: tuple[Account, ...]
    sponsors: tuple[Account, ...]

    @property
    def expiring_at(self) -> int:
        return self.taken_at + DAY

    @property
    def media_id(self) -> str:
        return f"{self.pk}_{self.owner.profile_id}"


def active_stories(world: InstagramWorld, owner: Account, now: int) -> list[Story]:
    """The stories ``owner`` has up at ``now`` (epoch seconds), oldest first; none for a private account."""
    if owner.is_private:
        return []
    today = now // DAY
    posted = [story for day in (today - 1, today) for story in _stories_of_day(world, owner, day)]
    return [story for story in posted if now - DAY < story.taken_at <= now]


def _stories_of_day(world: InstagramWorld, owner: Account, day: int) -> list[Story]:
    rng = seeded("stories", owner.profile_id, day)
    count = rng.choices(STORIES_PER_DAY, weights=_STORIES_PER_DAY_WEIGHTS)[0]
    times = sorted(rng.randrange(day * DAY, (day + 1) * DAY) for _ in range(count))
    stories = []
    for number, taken_at in enumerate(times):
        kind = "video" if rng.random() < 0.4 else "image"
        links = (f"https://linktr.ee/{owner.handle}",) if rng.random() < 0.25 else ()
        hashtags = tuple(rng.sample(_STORY_HASHTAGS, rng.randint(1, 2))) if rng.random() < 0.3 else ()
        mentions = (
            tuple(
                _known(world, handle)
                for handle in rng.sample(_STORY_FRIENDS, rng.randint(1, 2))
                if handle != owner.handle
            )
            if rng.random() < 0.3
            else ()
        )
        sponsors = (_known(world, rng.choice(_STORY_BRANDS)),) if rng.random() < 0.1 else ()
        stories.append(
            Story(
                owner=owner,
                pk=STORY_BASE + seeded("story-pk", owner.profile_id, day, number).randrange(10**18),
                kind=kind,
                taken_at=taken_at,
                video_duration=round(rng.uniform(3.0, 15.0), 3) if kind == "video" else None,
                links=links,
                hashtags=hashtags,
                mentions=mentions,
                sponsors=sponsors,
            )
        )
    return stories


def _known(world: InstagramWorld, handle: str) -> Account:
    account = world.account(handle)
    if account is None:
        raise ValueError(f"the sandbox's own handle {handle!r} is not a valid account")
    return account


def tagged_posts(
    world: InstagramWorld, account: Account, start: int, count: int = PAGE_SIZE
) -> tuple[list[Post], int | None]:
    """Posts of others that tag ``account``, newest first, from position ``start``, and where the next page starts.

    There are as many as the profile's ``usertags_count`` says (fewer when two picks land on
    the same post); a private account's are hidden, as on Instagram.
    """
    if account.is_private:
        return [], None
    posts: dict[str, Post] = {}
    for number in range(int(account.profile_id) % 40):
        rng = seeded("tagged", account.profile_id, number)
        owner = _known(world, f"{rng.choice(_TAGGERS_FIRST)}.{rng.choice(_TAGGERS_THEME)}")
        if owner.profile_id == account.profile_id:
            continue
        post = world.timeline(owner, rng.randrange(min(owner.media_count, 30)), 1)[0]
        tag = Tag(account, round(rng.random(), 4), round(rng.random(), 4))
        posts.setdefault(post.shortcode, dataclasses.replace(post, tags=(*post.tags, tag)))
    ordered = sorted(posts.values(), key=lambda post: post.taken_at, reverse=True)
    following = start + count
    return ordered[start:following], following if following < len(ordered) else None
