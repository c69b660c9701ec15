"""The sandbox's social graph: who follows an account, whom it follows, who liked and commented on
a post, and which posts a hashtag lists.

Every list derives from stable hashes, like ``InstagramWorld``, so each provider module pages
through the same people in the same order. The people are world accounts: a follower's handle
resolves to the same profile through any provider. Lists are bounded (an account lists at most
``MAX_FOLLOWERS`` followers whatever its follower count, much as Instagram stops long lists) so
that paging always ends; the counts the providers report stay the accounts' and posts' own.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from providers.sandbox.instagram import Account, InstagramWorld, Post, seeded

MAX_FOLLOWERS = 3000
MAX_FOLLOWING = 3000
MAX_LIKERS = 2500
MAX_COMMENTS = 1200
# A hashtag's feed is drawn from the timelines of this many accounts picked for the tag.
HASHTAG_ACCOUNTS = 16
# Feeds are cached per tag; past this many tags the cache starts over.
_FEED_CACHE = 256

_HASHTAG = re.compile(r"[a-z0-9_]{1,100}")
_PEOPLE = ("arjun", "priya", "dev", "nisha", "kiran", "asha", "rahul", "pooja", "amit", "leela", "farah", "yash")
_NOUNS = ("clicks", "vibes", "journal", "eats", "miles", "frames", "notes", "beats", "corner", "world")
_REMARKS = (
    "Love this",
    "So beautiful",
    "Where is this",
    "Need to try this",
    "Amazing shot",
    "Goals",
    "Can't wait for the next one",
    "Stunning colours",
    "This made my day",
    "Saving this for later",
)
_COMMENT_TAGS = ("#travel", "#foodie", "#love", "#explore", "#weekend", "#goals")
_PRIVATE_SHARE = 0.06
# Comment ids are 17-digit numbers like Instagram's. Each post owns a block of ids, each comment in it
# a slot of _REPLY_SLOTS: the comment's id, then its replies' (a comment shows at most 12 replies).
_COMMENT_IDS = 17_850_000_000_000_000
_REPLY_SLOTS = 16


@dataclass(frozen=True, slots=True)
class Comment:
    id: str
    author: Account
    text: str
    created_at: int
    likes: int
    replies: int  # answers under the comment; a reply's own is 0


def _window(total: int, start: int, count: int) -> tuple[range, int | None]:
    """Positions of one page of a list of ``total``, and where the next page starts (None: last page)."""
    end = min(start + count, total)
    return range(start, end), (end if end < total else None)


class SocialGraph:
    def __init__(self, world: InstagramWorld) -> None:
        self._world = world
        self._feeds: dict[str, tuple[Post, ...]] = {}

    # People

    def followers(self, account: Account, start: int, count: int) -> tuple[list[Account], int | None]:
        return self._people("followers", account.profile_id, min(account.followers, MAX_FOLLOWERS), start, count)

    def following(self, account: Account, start: int, count: int) -> tuple[list[Account], int | None]:
        return self._people("following", account.profile_id, min(account.following, MAX_FOLLOWING), start, count)

    def likers(self, post: Post, start: int, count: int) -> tuple[list[Account], int | None]:
        return self._people("likers", post.shortcode, min(post.likes, MAX_LIKERS), start, count)

    def _people(self, kind: str, key: str, total: int, start: int, count: int) -> tuple[list[Account], int | None]:
        positions, following = _window(total, start, count)
        return [self._person(kind, key, position) for position in positions], following

    def _person(self, kind: str, key: str, position: int) -> Account:
        rng = seeded(kind, key, position)
        # The number grows with the position, so one list never names an account twice.
        number = position * 7 + rng.randrange(7)
        prefix = "private." if rng.random() < _PRIVATE_SHARE else ""
        account = self._world.account(f"{prefix}{rng.choice(_PEOPLE)}.{rng.choice(_NOUNS)}{number}")
        assert account is not None  # the handle is valid by construction
        return account

    # Comments

    def comments(self, post: Post, start: int, count: int) -> tuple[list[Comment], int | None]:
        """Top-level comments, oldest first, spread between the post's publication and the world's day."""
        total = min(post.comments, MAX_COMMENTS)
        positions, following = _window(total, start, count)
        span = max(self._world.reference - post.taken_at, 60)
        comments = []
        for position in positions:
            rng = seeded("comment", post.shortcode, position)
            created_at = post.taken_at + int(span * (position + rng.random()) / total)
            replies = rng.choices((0, rng.randint(1, 3), rng.randint(4, 12)), weights=(75, 20, 5))[0]
            comment_id = str(_COMMENT_IDS + post.media_pk % 10**10 * 10**5 + position * _REPLY_SLOTS)
            comments.append(self._comment(rng, comment_id, created_at, replies))
        return comments, following

    def replies(self, comment: Comment, count: int) -> list[Comment]:
        """The first ``count`` answers to a comment, each after the one before."""
        replies = []
        created_at = comment.created_at
        for position in range(min(count, comment.replies, _REPLY_SLOTS - 1)):
            rng = seeded("reply", comment.id, position)
            created_at = min(created_at + rng.randrange(60, 6 * 3600), self._world.reference)
            replies.append(
                self._comment(
                    rng, str(int(comment.id) + 1 + position), created_at, 0, mention=f"@{comment.author.handle}"
                )
            )
        return replies

    def _comment(
        self, rng: random.Random, comment_id: str, created_at: int, replies: int, mention: str | None = None
    ) -> Comment:
        words = [rng.choice(_REMARKS), *rng.sample(_COMMENT_TAGS, rng.choice((0, 0, 1, 2)))]
        text = " ".join([mention, *words] if mention else words)
        likes = int(rng.paretovariate(1.6)) - 1
        return Comment(comment_id, self._person("commenters", comment_id, 0), text, created_at, likes, replies)

    # Hashtags

    def hashtag(self, tag: str) -> tuple[Post, ...]:
        """Posts whose caption carries ``#tag``, newest first; empty for a tag nobody uses or an invalid one."""
        tag = tag.strip().lstrip("#").lower()
        if not _HASHTAG.fullmatch(tag):
            return ()
        feed = self._feeds.get(tag)
        if feed is None:
            if len(self._feeds) >= _FEED_CACHE:
                self._feeds.clear()
            feed = self._feeds[tag] = self._collect(tag)
        return feed

    def _collect(self, tag: str) -> tuple[Post, ...]:
        rng = seeded("hashtag", tag)
        marker = f"#{tag}"
        found: dict[str, Post] = {}
        for _ in range(HASHTAG_ACCOUNTS):
            account = self._world.account(f"{rng.choice(_PEOPLE)}.{rng.choice(_NOUNS)}")
            assert account is not None
            for post in self._world.timeline(account, 0, account.media_count):
                if post.caption is not None and marker in post.caption.split():
                    found[post.shortcode] = post
        return tuple(sorted(found.values(), key=lambda post: post.taken_at, reverse=True))

    def hashtag_page(self, tag: str, start: int, count: int) -> tuple[list[Post], int | None]:
        feed = self.hashtag(tag)
        positions, following = _window(len(feed), start, count)
        return [feed[position] for position in positions], following
