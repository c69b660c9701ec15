"""Typed provider errors: the crawler and the flows act on the class, the message is for people.

    ProviderError
    ├── RetriableProviderError      another source may still answer (timeout, 5xx, 429/quota)
    │   ├── ProviderTimeout
    │   ├── ProviderUnavailable     5xx or connection failure
    │   └── QuotaExceeded           429 / quota; carries retry_after seconds when the provider said
    └── DefinitiveProviderError     the answer itself is a failure
        ├── ProfileMissing
        ├── PostMissing
        ├── Forbidden
        ├── AuthExpired
        ├── NotSupported
        ├── BadResponse             200 but not the shape the parser needs
        ├── UrlSignatureExpired     a CDN link past its expiry: the body "URL signature expired"
        ├── AssetTooLarge           a download over the configured size cap
        └── AssetUnavailable        the CDN refused a download (404, 410, another 4xx)
    NoCredential                    no enabled credential for a source
"""

from __future__ import annotations


class ProviderError(Exception):
    retriable = False

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.source = source

    def __str__(self) -> str:
        return f"{self.source}: {self.message}" if self.source else self.message


class RetriableProviderError(ProviderError):
    retriable = True


class ProviderTimeout(RetriableProviderError):
    pass


class ProviderUnavailable(RetriableProviderError):
    pass


class QuotaExceeded(RetriableProviderError):
    def __init__(self, message: str, *, source: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, source=source)
        self.retry_after = retry_after


class DefinitiveProviderError(ProviderError):
    pass


class ProfileMissing(DefinitiveProviderError):
    pass


class PostMissing(DefinitiveProviderError):
    pass


class Forbidden(DefinitiveProviderError):
    pass


class AuthExpired(DefinitiveProviderError):
    pass


class NotSupported(DefinitiveProviderError):
    pass


class BadResponse(DefinitiveProviderError):
    pass


class UrlSignatureExpired(DefinitiveProviderError):
    """Upstream re-queues the asset from a fresher URL; fetching this one again cannot succeed."""


class AssetTooLarge(DefinitiveProviderError):
    pass


class AssetUnavailable(DefinitiveProviderError):
    pass


class NoCredential(ProviderError):
    pass
