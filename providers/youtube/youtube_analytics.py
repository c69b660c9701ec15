"""YouTube Analytics: a channel's audience by city, country and age group × gender, with the channel
owner's OAuth credential (source ``ytapi``, picked by handle = channel id).

The credential is ``{"refresh_token", "channel_id", "client_id", "client_secret"}``. Each call first
trades the refresh token for an access token at Google's token endpoint (``google-oauth`` ``/token``,
form-encoded), then asks ``yt-analytics`` ``/v2/reports`` once per report with ``Authorization: Bearer``.
The secrets travel in the form body and the header only: neither reaches a trace (which keeps no
headers or bodies) or a message (answers are scrubbed of every secret sent).

The reports (``REPORTS``) are channel reports as the current reference defines them (checked
2026-12-03): ``ids=channel==MINE`` and no ``isCurated`` filter, which is unsupported for channel
reports since 2024-06-30 and made the legacy's gender report a playlist report. The reports are
independent: one that fails is named in ``ChannelInsights.failed`` and the others are kept. A refused
token or a spent quota concerns every report, so it ends the call at once for the crawler to act on
the credential; when every report fails, the call fails naming each.

Reports are ``{"kind": "youtubeAnalytics#resultTable", "columnHeaders": [{"name", ...}], "rows": [...]}``;
columns are found by header name, so their order is the query's. A channel without data has no ``rows``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx

from providers.errors import (
    AuthExpired,
    BadResponse,
    DefinitiveProviderError,
    Forbidden,
    InputRejected,
    ProfileMissing,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
)
from providers.http import Credential, ProviderHttp
from providers.parsing import Values
from providers.youtube.youtube_data import answer_object, parse_error
from topics.models import Platform, Profile, utcnow

SOURCE = "ytapi"
TOKEN_SOURCE = "google-oauth"  # noqa: S105 - a source name
REPORTS_SOURCE = "yt-analytics"
TOKEN_PATH = "/token"  # noqa: S105 - an endpoint path
REPORTS_PATH = "/v2/reports"
# Lifetime figures: the legacy report asked from this day to today.
START_DATE = "2000-01-01"
GENDERS = ("female", "male")
UNCATEGORIZED = "uncategorized"
CREDENTIAL_FIELDS = ("refresh_token", "client_id", "client_secret")
# OAuth answers these when the refresh token or the client is no longer good.
REFUSED_GRANTS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})

_v = Values(SOURCE)


class StartDateAfterEndDate(DefinitiveProviderError):
    """Analytics answered 412: the report's start date is after its end date."""


# Parsers


def parse_access_token(payload: dict[str, Any]) -> str:
    """Google's token answer: ``{"access_token", "expires_in", "scope", "token_type": "Bearer"}``."""
    token = _v.text(_v.require_object(payload).get("access_token"), "access_token")
    if not token:
        raise BadResponse("token answer has no access_token", source=TOKEN_SOURCE)
    return token


def _rows(payload: dict[str, Any], columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """The report's rows, each cut down to ``columns`` (located by header name)."""
    payload = _v.require_object(payload)
    headers = _v.list(payload.get("columnHeaders"), "columnHeaders") or []
    names = [header.get("name") if isinstance(header, dict) else None for header in headers]
    missing = [column for column in columns if column not in names]
    if missing:
        raise BadResponse(f"report has no column {', '.join(missing)}", source=SOURCE)
    positions = [names.index(column) for column in columns]
    rows = []
    for row in _v.list(payload.get("rows"), "rows") or []:
        if not isinstance(row, list) or len(row) < len(names):
            raise BadResponse(f"report row is not a row of {len(names)}: {row!r}", source=SOURCE)
        rows.append(tuple(row[position] for position in positions))
    return rows


def parse_views_by(payload: dict[str, Any], dimension: str) -> dict[str, int | None]:
    """A ``{dimension, views}`` report as ``{value: views}``."""
    return {
        str(_v.id(value, dimension)): _v.count(views, "views") for value, views in _rows(payload, (dimension, "views"))
    }


def parse_gender_age(payload: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """A ``{gender, ageGroup, viewerPercentage}`` report as ``{female|male|uncategorized: {ageGroup: percent}}``."""
    shares: dict[str, dict[str, float | None]] = {}
    for gender, age_group, percent in _rows(payload, ("gender", "ageGroup", "viewerPercentage")):
        side = gender if gender in GENDERS else UNCATEGORIZED
        group = str(_v.text(age_group, "ageGroup"))
        value = _v.number(percent, "viewerPercentage")
        # Legacy folded every other gender into one side; their shares add up.
        earlier = shares.setdefault(side, {}).get(group)
        shares[side][group] = value if earlier is None or value is None else round(earlier + value, 4)
    return shares


def insights(channel_id: str, dimensions: dict[str, Any]) -> Profile:
    """The parsed reports of one channel (by report name) as its profile insights."""
    return Profile(
        platform=Platform.YOUTUBE,
        source=SOURCE,
        profile_id=channel_id,
        handle=None,
        kind="profile_insights",
        dimensions=dimensions,
    )


@dataclass(frozen=True, slots=True)
class Report:
    """One audience report: the insights dimension it fills, its query, and the parser of its answer."""

    name: str
    query: Mapping[str, str]
    parse: Callable[[dict[str, Any]], dict[str, Any]]


REPORTS = (
    # The top cities and countries by views, as the legacy asked for them (these two still answer).
    Report(
        "city",
        {"dimensions": "city", "metrics": "views", "sort": "-views", "maxResults": "50"},
        partial(parse_views_by, dimension="city"),
    ),
    Report(
        "country",
        {"dimensions": "country", "metrics": "views", "sort": "-views", "maxResults": "10"},
        partial(parse_views_by, dimension="country"),
    ),
    Report("gender_age", {"dimensions": "ageGroup,gender", "metrics": "viewerPercentage"}, parse_gender_age),
)


def parse_insights(channel_id: str, answers: Mapping[str, dict[str, Any]]) -> Profile:
    """The reports that arrived (answers by report name) as the channel's profile insights."""
    return insights(
        channel_id, {report.name: report.parse(answers[report.name]) for report in REPORTS if report.name in answers}
    )


@dataclass(frozen=True, slots=True)
class ChannelInsights:
    """What one call brought: the insights of the reports that arrived, and why each other one failed."""

    profile: Profile
    failed: dict[str, str] = field(default_factory=dict)


# A refused token or a spent quota is the credential's, not one report's: every report would fail alike.
CREDENTIAL_ERRORS = (AuthExpired, QuotaExceeded, Forbidden)


def every_report_failed(failures: Mapping[str, ProviderError]) -> ProviderError:
    """The error of a call none of whose reports arrived, naming each. One kind of failure keeps its class;
    a mix is retriable if any part of it was."""
    message = "every report failed: " + "; ".join(
        f"{name}: {type(error).__name__}: {error.message}" for name, error in failures.items()
    )
    kinds = {type(error) for error in failures.values()}
    if len(kinds) == 1:
        kind = kinds.pop()
    else:
        kind = ProviderUnavailable if any(error.retriable for error in failures.values()) else InputRejected
    return kind(message, source=REPORTS_SOURCE)


# The client


def _redacted(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def token_error(response: httpx.Response, secrets: tuple[str, ...]) -> ProviderError:
    """The typed error of a refused token exchange: ``{"error": "invalid_grant", "error_description": ...}``."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    code = payload.get("error") if isinstance(payload, dict) else None
    description = payload.get("error_description") if isinstance(payload, dict) else None
    said = _redacted(" ".join(str(part) for part in (code, description) if part) or response.text[:200], secrets)
    detail = f"POST {TOKEN_PATH} answered {response.status_code}: {said}"
    if code in REFUSED_GRANTS or response.status_code == 401:
        return AuthExpired(f"refresh token refused ({detail})", source=TOKEN_SOURCE)
    return BadResponse(detail, source=TOKEN_SOURCE)


class YouTubeAnalyticsClient:
    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    async def channel_insights(
        self, channel_id: str, *, credential: Credential, request_id: str | None = None
    ) -> ChannelInsights:
        secrets = credential.secrets
        owner = secrets.get("channel_id")
        if owner and owner != channel_id:
            raise Forbidden(f"credential {credential.id} belongs to another channel", source=SOURCE)
        missing = [name for name in CREDENTIAL_FIELDS if not secrets.get(name)]
        if missing:
            raise AuthExpired(f"credential {credential.id} has no {', '.join(missing)}", source=SOURCE)
        token = await self._access_token(credential, request_id)
        sent = (*(str(secrets[name]) for name in CREDENTIAL_FIELDS), token)
        arrived: dict[str, Any] = {}
        failures: dict[str, ProviderError] = {}
        for report in REPORTS:
            try:
                arrived[report.name] = report.parse(await self._report(report, token, sent, credential, request_id))
            except CREDENTIAL_ERRORS:
                raise
            except ProviderError as exc:
                failures[report.name] = exc
        if not arrived:
            raise every_report_failed(failures)
        return ChannelInsights(
            insights(channel_id, arrived),
            {name: f"{type(error).__name__}: {error.message}" for name, error in failures.items()},
        )

    async def _access_token(self, credential: Credential, request_id: str | None) -> str:
        secrets = credential.secrets
        form = {
            "client_secret": str(secrets["client_secret"]),
            "grant_type": "refresh_token",
            "refresh_token": str(secrets["refresh_token"]),
            "client_id": str(secrets["client_id"]),
        }
        response = await self._http.request(
            TOKEN_SOURCE,
            "POST",
            TOKEN_PATH,
            credential=credential,
            data=form,
            request_id=request_id,
            secrets_as_headers=False,
        )
        if response.status_code != 200:
            raise token_error(response, tuple(form.values()))
        try:
            return parse_access_token(response.json())
        except ValueError as exc:
            raise BadResponse(f"POST {TOKEN_PATH} answered with a body that is not JSON", source=TOKEN_SOURCE) from exc

    async def _report(
        self, report: Report, token: str, sent: tuple[str, ...], credential: Credential, request_id: str | None
    ) -> dict[str, Any]:
        params = {
            "ids": "channel==MINE",
            "startDate": START_DATE,
            "endDate": utcnow().date().isoformat(),
            **report.query,
        }
        response = await self._http.request(
            REPORTS_SOURCE,
            "GET",
            REPORTS_PATH,
            credential=credential,
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            request_id=request_id,
            secrets_as_headers=False,
        )
        what = f"GET {REPORTS_PATH}"
        if response.status_code == 412:
            refusal = parse_error(412, response.text, redact=sent)
            raise StartDateAfterEndDate(f"{what} answered 412: {refusal.message}", source=REPORTS_SOURCE)
        return answer_object(response, source=REPORTS_SOURCE, what=what, missing=ProfileMissing, redact=sent)
