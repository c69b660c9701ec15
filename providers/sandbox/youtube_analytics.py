"""Google's OAuth token endpoint and YouTube Analytics reports in the sandbox.

``POST /google-oauth/token`` trades a refresh token for an access token (form-encoded, as Google
takes it). A sandbox refresh token names its channel: ``refresh_token_for(channel_id)``; one
starting ``revoked-`` is answered ``invalid_grant``, as Google answers a revoked or expired one.
The access token names the channel too, so ``GET /yt-analytics/v2/reports`` with
``ids=channel==MINE`` reports on the channel the token was issued for: the world's ``audience``
rows, in ``youtubeAnalytics#resultTable`` shape. A start date after the end date is answered 412.
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
UNSUPPORTED = ApiRefusal(400, "badRequest", "The query is not supported. Check the documentation at "
                         "https://developers.google.com/youtube/analytics/v2/available_reports for a list of "
                         "supported queries.")
DATES_REVERSED = ApiRefusal(412, "conditionNotMet", "The start date must not be after the end date.")

# (dimensions, metrics) -> the column types of the report.
_REPORTS = {
    ("city", "views"): (("city", "DIMENSION", "STRING"), ("views", "METRIC", "INTEGER")),
    ("country", "views"): (("country", "DIMENSION", "STRING"), ("views", "METRIC", "INTEGER")),
    ("gender,ageGroup", "viewerPercentage"): (("gender", "DIMENSION", "STRING"), ("ageGroup", "DIMENSION", "STRING"),
                                              ("viewerPercentage", "METRIC", "FLOAT")),
}


def refresh_token_for(channel_id: str) -> str:
    return REFRESH_PREFIX + channel_id


def _token_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def report_rows(audience: Audience, dimensions: str) -> list[list[Any]]:
    if dimensions == "city":
        return [list(row) for row in audience.cities]
    if dimensions == "country":
        return [list(row) for row in audience.countries]
    return [list(row) for row in audience.gender_age]


class YouTubeAnalyticsRoutes:
    def __init__(self, world: YouTubeWorld) -> None:
        self._world = world

    def mounts(self) -> list[Mount]:
        return [Mount(TOKEN_PREFIX, routes=[Route("/token", self.token, methods=["POST"])]),
                Mount(REPORTS_PREFIX, routes=[Route("/v2/reports", self.reports)])]

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
        channel = self._world.channel(refresh.removeprefix(REFRESH_PREFIX)) if refresh.startswith(REFRESH_PREFIX) \
            else None
        if channel is None:
            return _token_error("invalid_grant", "Token has been expired or revoked.")
        return JSONResponse({"access_token": ACCESS_PREFIX + channel.channel_id + "." + etag("access", refresh),
                             "expires_in": TOKEN_LIFETIME, "scope": SCOPE, "token_type": "Bearer"})

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
        columns = _REPORTS.get((params.get("dimensions", ""), params.get("metrics", "")))
        if columns is None:
            return UNSUPPORTED.response()
        limit = params.get("maxResults", "")
        rows = report_rows(self._world.audience(channel), params["dimensions"])
        if limit.isdigit():
            rows = rows[:int(limit)]
        body: dict[str, Any] = {"kind": "youtubeAnalytics#resultTable", "columnHeaders": [
            {"name": name, "columnType": kind, "dataType": data} for name, kind, data in columns]}
        if rows:
            body["rows"] = rows
        return JSONResponse(body)
