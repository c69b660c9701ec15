"""Google's OAuth token endpoint and YouTube Analytics reports in the sandbox.

``POST /google-oauth/token`` trades a refresh token for an access token (form-encoded, as Google
takes it). A sandbox refresh token names its channel: ``refresh_token_for(channel_id)``; one
starting ``revoked-`` is answered ``invalid_grant``, as Google answers a revoked or expired one.
The access token names the channel too, so ``GET /yt-analytics/v2/reports`` with
``ids=channel==MINE`` reports on the channel the token was issued for: the world's ``audience``
rows, in ``youtubeAnalytics#resultTable`` shape, columns in the order the query names the dimensions.
As the real API does since 2024-06-30, a channel report filtered on ``isCurated`` is refused (400, "The
query is not supported"), and so is any query outside the three audience reports. A start date after
the end date is answered 412. A world channel with a report outage (``world.report_outage``) has that
one report answered 503 ``backendError``, so a client can be seen keeping the others.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from providers.sandbox.youtube import Audience, Channel, YouTubeWorld
from providers.sandbox.youtube_data import ApiRefusal, etag

TOKEN_PREFIX = "/google-oauth"
REPORTS_PREFIX = "/yt-analytics"
REFRESH_PREFIX = "1//sandbox."
ACCESS_PREFIX = "ya29.sandbox."
REVOKED_PREFIX = "revoked-"
TOKEN_LIFETIME = 3599
SCOPE = "https://www.googleapis.com/auth/yt-analytics.readonly https://www.googleapis.com/auth/youtube.readonly"

INVALID_CREDENTIALS = ApiRefusal(401, "authError", "Invalid Credentials")
UNSUPPORTED = ApiRefusal(
    400,
    "badRequest",
    "The query is not supported. Check the documentation at "
    "https://developers.google.com/youtube/analytics/v2/available_reports for a list of "
    "supported queries.",
)
DATES_REVERSED = ApiRefusal(412, "conditionNotMet", "The start date must not be after the end date.")
BACKEND_ERROR = ApiRefusal(503, "backendError", "Backend Error")
# Filters the API no longer takes on channel reports (isCurated: since 2024-06-30, content owners only).
NOT_FOR_CHANNELS = frozenset({"isCurated"})

# The audience reports: (dimensions, metric) -> (report name, data type of each column by name).
_REPORTS = {
    (frozenset({"city"}), "views"): ("city", {"city": "STRING", "views": "INTEGER"}),
    (frozenset({"country"}), "views"): ("country", {"country": "STRING", "views": "INTEGER"}),
    (frozenset({"ageGroup", "gender"}), "viewerPercentage"): (
        "gender_age",
        {"ageGroup": "STRING", "gender": "STRING", "viewerPercentage": "FLOAT"},
    ),
}


def refresh_token_for(channel_id: str) -> str:
    return REFRESH_PREFIX + channel_id


def _token_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def report_rows(audience: Audience, report: str, columns: list[str]) -> list[list[Any]]:
    """The audience rows of ``report`` with their values in the order of ``columns``."""
    if report == "city":
        rows = [dict(zip(("city", "views"), row, strict=True)) for row in audience.cities]
    elif report == "country":
        rows = [dict(zip(("country", "views"), row, strict=True)) for row in audience.countries]
    else:
        rows = [dict(zip(("gender", "ageGroup", "viewerPercentage"), row, strict=True)) for row in audience.gender_age]
    return [[row[column] for column in columns] for row in rows]


def filtered_on(filters: str) -> set[str]:
    """The dimensions a ``filters`` value names: ``country==IN;video==a,b`` -> {country, video}."""
    return {part.split("==", 1)[0].strip() for part in filters.split(";") if "==" in part}


class YouTubeAnalyticsRoutes:
    def __init__(self, world: YouTubeWorld) -> None:
        self._world = world

    def mounts(self) -> list[Mount]:
        return [
            Mount(TOKEN_PREFIX, routes=[Route("/token", self.token, methods=["POST"])]),
            Mount(REPORTS_PREFIX, routes=[Route("/v2/reports", self.reports)]),
        ]

    async def token(self, request: Request) -> JSONResponse:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            return _token_error("invalid_request", "Invalid content type; expected a form-encoded body.")
        form = {name: values[0] for name, values in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "refresh_token":
            return _token_error("unsupported_grant_type", "Invalid grant_type: " + form.get("grant_type", ""))
        if not form.get("client_id") or not form.get("client_secret"):
            return _token_error("invalid_client", "The OAuth client was not found.", 401)
        refresh = form.get("refresh_token", "")
        if not refresh:
            return _token_error("invalid_request", "Missing required parameter: refresh_token")
        channel = (
            self._world.channel(refresh.removeprefix(REFRESH_PREFIX)) if refresh.startswith(REFRESH_PREFIX) else None
        )
        if channel is None:
            return _token_error("invalid_grant", "Token has been expired or revoked.")
        return JSONResponse(
            {
                "access_token": ACCESS_PREFIX + channel.channel_id + "." + etag("access", refresh),
                "expires_in": TOKEN_LIFETIME,
                "scope": SCOPE,
                "token_type": "Bearer",
            }
        )

    def _channel_of(self, request: Request) -> Channel | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not token.startswith(ACCESS_PREFIX):
            return None
        return self._world.channel(token.removeprefix(ACCESS_PREFIX).split(".")[0])

    async def reports(self, request: Request) -> JSONResponse:
        channel = self._channel_of(request)
        if channel is None:
            return INVALID_CREDENTIALS.response()
        params = request.query_params
        if params.get("ids") not in ("channel==MINE", f"channel=={channel.channel_id}"):
            return ApiRefusal(403, "forbidden", "Forbidden").response()
        start, end = params.get("startDate", ""), params.get("endDate", "")
        if not start or not end:
            return ApiRefusal(400, "required", "Required", "global").response()
        if start > end:
            return DATES_REVERSED.response()
        if filtered_on(params.get("filters", "")) & NOT_FOR_CHANNELS:
            return UNSUPPORTED.response()
        dimensions = [name.strip() for name in params.get("dimensions", "").split(",") if name.strip()]
        metric = params.get("metrics", "")
        known = _REPORTS.get((frozenset(dimensions), metric))
        if known is None or len(dimensions) != len(set(dimensions)):
            return UNSUPPORTED.response()
        report, types = known
        if self._world.report_outage(channel) == report:
            return BACKEND_ERROR.response()
        columns = [*dimensions, metric]
        limit = params.get("maxResults", "")
        rows = report_rows(self._world.audience(channel), report, columns)
        if limit.isdigit():
            rows = rows[: int(limit)]
        body: dict[str, Any] = {
            "kind": "youtubeAnalytics#resultTable",
            "columnHeaders": [
                {"name": name, "columnType": "DIMENSION" if name in dimensions else "METRIC", "dataType": types[name]}
                for name in columns
            ],
        }
        if rows:
            body["rows"] = rows
        return JSONResponse(body)
