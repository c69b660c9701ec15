"""Instagram-CDN media URLs for the sandbox, signed and expiring like the real ones.

A URL names its media by path and carries the real query parameters. ``oe`` is the
expiry in hex epoch seconds, as Instagram writes it; ``oh`` is a signature over path
and ``oe``. The sandbox serves these paths under ``/cdn`` (``cdn_routes.py``) and answers
"URL signature expired" once ``oe`` has passed or ``oh`` does not match, so an asset
pipeline meets the same failure it meets on the real CDN.

A URL lives ``ttl`` seconds from when it is made (``BEAT_SANDBOX_CDN_TTL``, one day by
default), rounded up to a granule so that the same media built twice within the
granule is the same string and the sandbox's answers stay deterministic.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import time

from providers.sandbox.config import ENV_PREFIX

HOST = "scontent-bom1-1.cdninstagram.com"
TTL_ENV = f"{ENV_PREFIX}CDN_TTL"
DEFAULT_TTL = 86_400.0
# Expiries are rounded up to the hour (or to the TTL, when that is shorter): a URL lives
# between ttl and ttl + granule, and every answer within one granule carries the same URL.
EXPIRY_GRANULE = 3_600
# A sandbox signs with a fixed key on purpose: every sandbox process, and the tests that
# build expired URLs, must agree on what a valid signature is.
_SIGNING_KEY = b"beat-sandbox-cdn"


def _token(*parts: object, size: int) -> str:
    return hashlib.blake2b("\x1f".join(str(part) for part in parts).encode(), digest_size=size).hexdigest()


def configured_ttl() -> float:
    """Seconds a new URL stays valid: ``BEAT_SANDBOX_CDN_TTL`` when set, else one day."""
    raw = os.environ.get(TTL_ENV)
    if raw is None:
        return DEFAULT_TTL
    try:
        ttl = float(raw)
    except ValueError:
        raise ValueError(f"{TTL_ENV}: expected seconds, got {raw!r}") from None
    if not ttl > 0:
        raise ValueError(f"{TTL_ENV}: expected seconds > 0, got {raw!r}")
    return ttl


def expiry(now: float, ttl: float) -> int:
    """Epoch seconds at which a URL made at ``now`` with ``ttl`` expires."""
    granule = max(1, min(EXPIRY_GRANULE, int(ttl)))
    return math.ceil((now + ttl) / granule) * granule


def signature(path: str, oe: str) -> str:
    digest = hmac.new(_SIGNING_KEY, f"{path}\x1f{oe}".encode(), hashlib.sha256).hexdigest()
    return f"00_{digest[:32]}"


def is_valid(path: str, oe: str | None, oh: str | None, now: float) -> bool:
    """Whether a URL with these parameters is still served: signed for this path and not past ``oe``."""
    if not oe or not oh or not hmac.compare_digest(signature(path, oe), oh):
        return False
    try:
        return now < int(oe, 16)
    except ValueError:
        return False


def signed_url(
    path: str, *, stp: str, parts: tuple[object, ...] = (), now: float | None = None, ttl: float | None = None
) -> str:
    """``https://<HOST><path>?…&oh=…&oe=…``; ``parts`` seed the parameters that only look real."""
    oe = format(expiry(time.time() if now is None else now, configured_ttl() if ttl is None else ttl), "X")
    ohc = _token("ohc", path, *parts, size=6)
    category = int(_token("cat", path, size=1), 16) % 9
    return (
        f"https://{HOST}{path}?stp={stp}&_nc_ht={HOST}&_nc_cat=10{category}&_nc_ohc={ohc}&ccb=7-5"
        f"&oh={signature(path, oe)}&oe={oe}&_nc_sid=7a9f4b"
    )


def profile_picture(profile_id: str, size: int) -> str:
    name = f"{_token('pic', profile_id, size=8)}_{profile_id}_n.jpg"
    return signed_url(f"/v/t51.2885-19/{name}", stp=f"dst-jpg_s{size}x{size}", parts=("pic", size))


def image(media_pk: int, width: int, height: int, variant: int = 0) -> str:
    name = f"{media_pk % 10**9}_{_token('img', media_pk, variant, size=8)}_{media_pk}_n.jpg"
    return signed_url(f"/v/t51.2885-15/{name}", stp=f"dst-jpg_e35_p{width}x{height}", parts=("img", width))


def video(media_pk: int, width: int, height: int) -> str:
    name = f"{_token('vid', media_pk, size=12).upper()}_video_dashinit.mp4"
    return signed_url(f"/o1/v/t16/f1/m82/{name}", stp=f"dst-mp4_q90_{width}x{height}", parts=("vid", width))
