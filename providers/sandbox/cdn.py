"""Instagram-CDN-looking media URLs for the sandbox's accounts and posts.

They carry the same query parameters as the real ones (``oh`` hash, ``oe`` expiry) so that
code which strips, logs or compares them meets realistic input; the values are stable per
media item.
"""

from __future__ import annotations

import hashlib

HOST = "scontent-bom1-1.cdninstagram.com"


def _token(*parts: object, size: int) -> str:
    return hashlib.blake2b("\x1f".join(str(part) for part in parts).encode(), digest_size=size).hexdigest()


def _query(*parts: object, stp: str) -> str:
    oh = _token("oh", *parts, size=16)
    oe = _token("oe", *parts, size=4).upper()
    ohc = _token("ohc", *parts, size=6)
    category = int(oh[0], 16) % 9
    return f"stp={stp}&_nc_ht={HOST}&_nc_cat=10{category}&_nc_ohc={ohc}&ccb=7-5&oh=00_{oh}&oe={oe}&_nc_sid=7a9f4b"


def profile_picture(profile_id: str, size: int) -> str:
    name = f"{_token('pic', profile_id, size=8)}_{profile_id}_n.jpg"
    return f"https://{HOST}/v/t51.2885-19/{name}?{_query('pic', profile_id, size, stp=f'dst-jpg_s{size}x{size}')}"


def image(media_pk: int, width: int, height: int, variant: int = 0) -> str:
    name = f"{media_pk % 10**9}_{_token('img', media_pk, variant, size=8)}_{media_pk}_n.jpg"
    stp = f"dst-jpg_e35_p{width}x{height}"
    return f"https://{HOST}/v/t51.2885-15/{name}?{_query('img', media_pk, variant, width, stp=stp)}"


def video(media_pk: int, width: int, height: int) -> str:
    name = f"{_token('vid', media_pk, size=12).upper()}_video_dashinit.mp4"
    stp = f"dst-mp4_q90_{width}x{height}"
    return f"https://{HOST}/o1/v/t16/f1/m82/{name}?{_query('vid', media_pk, width, stp=stp)}"
