"""The identity service: an Instagram handle's Graph token (legacy-beat.md §8, ``clients/identity.py``).

The identity service announces a new token on ``new_access_token_rk``; a message without the token
itself is completed from this route, as the legacy helper read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import httpx

from providers.errors import BadResponse, ProviderUnavailable

SOURCE = "identity"
PATH = "/identity-service/api/socialaccount/platform/INSTAGRAM/handle/{handle}"


@dataclass(frozen=True, slots=True)
class GraphAccount:
    handle: str
    user_id: str
    token: str

    def __repr__(self) -> str:  # the token never reaches a log line
        return f"GraphAccount(handle={self.handle!r}, user_id={self.user_id!r})"


async def graph_account(base_url: str, handle: str, *, timeout: float = 30.0) -> GraphAccount:
    """``handle``'s Graph user id and token; ProviderUnavailable when the service cannot answer now,
    BadResponse when its answer has no token."""
    url = base_url.rstrip("/") + PATH.format(handle=quote(handle, safe=""))
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"identity service: {type(exc).__name__}", source=SOURCE) from None
    if response.status_code >= 500 or response.status_code == 429:
        raise ProviderUnavailable(f"identity service answered {response.status_code}", source=SOURCE)
    try:
        body = response.json()
    except ValueError:
        body = None
    # The legacy read these keys at the top level or under the envelope's "data".
    account = body.get("data", body) if isinstance(body, dict) else None
    if response.status_code >= 400 or not isinstance(account, dict):
        raise BadResponse(f"identity service answered {response.status_code} for handle {handle}", source=SOURCE)
    token, user_id = account.get("graphAccessToken"), account.get("socialUserId")
    if not token or not user_id:
        raise BadResponse(f"identity service has no Graph token for handle {handle}", source=SOURCE)
    return GraphAccount(handle=handle, user_id=str(user_id), token=str(token))
