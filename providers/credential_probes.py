"""Whether a credential's key still works, by one cheap call to its source (``beat listen``'s
``credentials_validate``; Graph tokens are checked with ``debug_token`` instead, see ``graphapi.TokenInfo``).

Which call is cheap follows from what the source's client can do (``providers/operations.py``): a profile
every Instagram source knows, one YouTube channel, one order of the credential's own store.
"""

from __future__ import annotations

from providers.errors import AuthExpired, Forbidden, NotSupported, PostMissing, ProfileMissing, QuotaExceeded
from providers.http import Credential
from providers.operations import ProfileByHandle, StoreOrders, YtChannels

# Public accounts that exist for as long as the platforms do.
PROBE_HANDLE = "instagram"
PROBE_CHANNEL = "UCBR8-60-B28hp2BmDPdntcQ"  # YouTube's own channel


async def refusal(client: object, credential: Credential) -> str | None:
    """Why the source refuses the credential's key, or None when it answered with it.

    Raises NotSupported when no cheap call is known for this client, and a retriable provider error when
    the source could not say (down, timing out, answering garbage).
    """
    try:
        if isinstance(client, ProfileByHandle):
            await client.profile_by_handle(PROBE_HANDLE, credential=credential)
        elif isinstance(client, YtChannels):
            await client.channels([PROBE_CHANNEL], credential=credential)
        elif isinstance(client, StoreOrders) and credential.handle:
            await client.orders(credential.handle, 1, {}, credential=credential)
        else:
            raise NotSupported(f"no cheap call is known to check a {credential.source} credential")
    except (AuthExpired, Forbidden) as exc:
        return exc.message
    except (ProfileMissing, PostMissing, QuotaExceeded):
        # The source took the key and answered about the account, or rationed it: the key itself works.
        return None
    return None
