"""API keys of the facade: scopes, the key format, hashing, and ``BEAT_API_KEYS``.

A key is shown once, when it is made; Beat keeps only its SHA-256. A plain (unsalted, fast) hash is
enough because every key Beat makes is 256 random bits: a salt or a slow KDF defends guessable secrets
such as passwords, and nobody can enumerate 2**256 candidates whatever the hash costs. Being
deterministic, the hash is also what the facade compares a presented key against.

``BEAT_API_KEYS`` gives keys by environment, for deployments without ``beat keys``:
``name:scope,scope:key`` entries separated by ``;``, e.g. ``ops:submit,read,admin:3Jx…;batch:submit:Qk…``.
The key is everything after the second colon, so it must not contain ``;``; it must be at least
``MIN_ENV_KEY_LENGTH`` characters, which only a random key should be.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

SUBMIT, READ, ADMIN = "submit", "read", "admin"
SCOPES = (SUBMIT, READ, ADMIN)
# What `beat keys create` makes: recognisable in a leaked file, then 32 random bytes (256 bits).
KEY_PREFIX = "beat_"
MIN_ENV_KEY_LENGTH = 24


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """The hex SHA-256 of a key: what is stored, and what a presented key is compared by."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def parse_scopes(text: str) -> tuple[str, ...]:
    """``submit,read`` as scopes in canonical order; ValueError naming an unknown one."""
    wanted = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {', '.join(unknown)} (scopes: {', '.join(SCOPES)})")
    if not wanted:
        raise ValueError(f"no scope given (scopes: {', '.join(SCOPES)})")
    return tuple(scope for scope in SCOPES if scope in wanted)


@dataclass(frozen=True, slots=True)
class KnownKey:
    """A key the facade accepts, by its hash; ``key_id`` is None for a key given by environment."""

    name: str
    scopes: tuple[str, ...]
    hash: str
    key_id: int | None = None


def parse_env_keys(text: str) -> list[KnownKey]:
    """The keys of ``BEAT_API_KEYS``; a ValueError names the entry at fault by position, never its key."""
    keys = []
    for position, entry in enumerate((part.strip() for part in text.split(";")), 1):
        if not entry:
            continue
        name, sep, rest = entry.partition(":")
        scopes, sep2, key = rest.partition(":")
        if not (sep and sep2 and name.strip() and key):
            raise ValueError(f"entry {position}: expected name:scope,scope:key")
        try:
            parsed = parse_scopes(scopes)
        except ValueError as exc:
            raise ValueError(f"entry {position} ({name.strip()}): {exc}") from None
        if len(key) < MIN_ENV_KEY_LENGTH:
            raise ValueError(
                f"entry {position} ({name.strip()}): the key is shorter than {MIN_ENV_KEY_LENGTH} characters; "
                "use a random one (`beat keys create` prints one)"
            )
        keys.append(KnownKey(name.strip(), parsed, key_hash(key)))
    return keys


def match_key(presented: str, known: Iterable[KnownKey]) -> KnownKey | None:
    """The known key ``presented`` is, compared by hash in constant time against every known key (no early
    exit, so the time taken says nothing about which key, if any, came close)."""
    digest = key_hash(presented)
    found = None
    for candidate in known:
        if hmac.compare_digest(digest, candidate.hash) and found is None:
            found = candidate
    return found
