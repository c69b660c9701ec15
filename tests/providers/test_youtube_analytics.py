"""YouTube Analytics: the report parsers on fixtures in the API's shapes, and the client (OAuth token exchange,
then three channel reports, each kept or failed on its own) against the sandbox over loopback HTTP, its refusals,
and no secret in errors, logs or traces."""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import Any

import httpx
import pytest

from providers.errors import (
    AuthExpired,
    BadResponse,
    Forbidden,
    InputRejected,
    ProfileMissing,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    QuotaExceeded,
)
from providers.http import Credential, ProviderHttp
from providers.sandbox.config import SandboxConfig
from providers.sandbox.youtube import (
    CITY_REPORT_DOWN_CHANNEL_ID,
    DEMO_CHANNEL_ID,
    HIDDEN_SUBSCRIBERS_CHANNEL_ID,
    YouTubeWorld,
)
from providers.sandbox.youtube_analytics import refresh_token_for
from providers.youtube.youtube_analytics import (
    REPORTS_SOURCE,
    SOURCE,
    TOKEN_SOURCE,
    StartDateAfterEndDate,
    YouTubeAnalyticsClient,
    every_report_failed,
    parse_gender_age,
    parse_insights,
    parse_views_by,
)
from providers.youtube.youtube_data import parse_error
from tests.providers.youtube_loopback import LoopbackServer
from tests.support import PROVIDER_FIXTURES, load_fixture
from topics.models import Platform, TraceLog, utcnow

FIXTURES = PROVIDER_FIXTURES / "youtube_analytics"
CLIENT_SECRET = "sandbox-client-secret-77e1"


load = partial(load_fixture, "youtube_analytics")


def grant(channel_id: str, refresh_token: str | None = None) -> Credential:
    return Credential(
        id=f"oauth-{channel_id[-4:]}",
        source=SOURCE,
        handle=channel_id,
        secrets={
            "refresh_token": refresh_token or refresh_token_for(channel_id),
            "channel_id": channel_id,
            "client_id": "sandbox-client.apps.googleusercontent.com",
            "client_secret": CLIENT_SECRET,
        },
    )


# Parsers


def test_views_by_city_and_country() -> None:
    city = load("report_city.json")
    assert [header["name"] for header in city["columnHeaders"]] == ["city", "views"]
    by_city = parse_views_by(city, "city")
    assert by_city == {row[0]: row[1] for row in city["rows"]} and len(by_city) == 12
    assert list(by_city) == [row[0] for row in city["rows"]]  # most viewed first, as answered
    by_country = parse_views_by(load("report_country.json"), "country")
    assert len(by_country) == 10 and "IN" in by_country
    assert all(isinstance(views, int) for views in by_country.values())


def test_gender_age() -> None:
    payload = load("report_gender_age.json")
    # The channel report asks for dimensions=ageGroup,gender: the columns come in that order.
    assert [header["name"] for header in payload["columnHeaders"]] == ["ageGroup", "gender", "viewerPercentage"]
    shares = parse_gender_age(payload)
    assert set(shares) == {"female", "male", "uncategorized"}
    female = {row[0]: row[2] for row in payload["rows"] if row[1] == "female"}
    assert shares["female"] == female and len(female) == 7
    # Any gender but female and male is uncategorized (the API says user_specified).
    assert shares["uncategorized"] == {row[0]: row[2] for row in payload["rows"] if row[1] == "user_specified"}
    total = sum(pct for side in shares.values() for pct in side.values())
    assert 99.0 < total < 101.0


def test_reports_read_columns_by_name_and_may_have_no_rows() -> None:
    payload = load("report_gender_age.json")
    payload["columnHeaders"] = [payload["columnHeaders"][i] for i in (2, 0, 1)]
    payload["rows"] = [[row[2], row[0], row[1]] for row in payload["rows"]]
    assert parse_gender_age(payload) == parse_gender_age(load("report_gender_age.json"))
    empty = {"kind": "youtubeAnalytics#resultTable", "columnHeaders": load("report_city.json")["columnHeaders"]}
    assert parse_views_by(empty, "city") == {}
    with pytest.raises(BadResponse, match="no column country"):
        parse_views_by(load("report_city.json"), "country")
    broken = load("report_city.json")
    broken["rows"][0] = ["/m/04vmp"]
    with pytest.raises(BadResponse, match="not a row of 2"):
        parse_views_by(broken, "city")
    broken = load("report_city.json")
    broken["rows"][0][1] = "lots"
    with pytest.raises(BadResponse, match="views is not a count"):
        parse_views_by(broken, "city")


def test_insights() -> None:
    insights = parse_insights(
        DEMO_CHANNEL_ID,
        {
            "city": load("report_city.json"),
            "country": load("report_country.json"),
            "gender_age": load("report_gender_age.json"),
        },
    )
    assert (insights.platform, insights.source, insights.kind, insights.profile_id, insights.handle) == (
        Platform.YOUTUBE,
        "ytapi",
        "profile_insights",
        DEMO_CHANNEL_ID,
        None,
    )
    assert set(insights.dimensions) == {"city", "country", "gender_age"} and insights.metrics == {}
    assert insights.dimensions["gender_age"]["male"] == parse_gender_age(load("report_gender_age.json"))["male"]
    # The reports that arrived make the insights; a missing one is absent, not empty.
    partial = parse_insights(DEMO_CHANNEL_ID, {"country": load("report_country.json")})
    assert partial.dimensions == {"country": insights.dimensions["country"]}


def test_refusal_fixtures() -> None:
    # isCurated on a channel report, and a backend failure: Google's error object, read as any other refusal.
    unsupported = parse_error(400, (FIXTURES / "error_query_not_supported.json").read_text())
    assert (unsupported.reason, unsupported.message.startswith("The query is not supported")) == ("badRequest", True)
    assert parse_error(503, (FIXTURES / "error_backend.json").read_text()).reason == "backendError"


@pytest.mark.parametrize(
    ("failures", "expected"),
    [
        ({"city": StartDateAfterEndDate("a"), "country": StartDateAfterEndDate("b")}, StartDateAfterEndDate),
        ({"city": ProviderTimeout("a"), "country": BadResponse("b")}, ProviderUnavailable),
        ({"city": ProfileMissing("a"), "country": BadResponse("b")}, ProviderUnavailable),
        ({"city": ProfileMissing("a"), "country": StartDateAfterEndDate("b")}, InputRejected),
    ],
)
def test_every_report_failed(failures: dict[str, ProviderError], expected: type[ProviderError]) -> None:
    # One kind of failure keeps its class; a mix is worth retrying only when some part of it was.
    error = every_report_failed(failures)
    assert type(error) is expected and error.source == REPORTS_SOURCE
    assert error.message == "every report failed: " + "; ".join(
        f"{name}: {type(failure).__name__}: {failure.message}" for name, failure in failures.items()
    )


class CannedHttp:
    def __init__(self, *answers: tuple[int, Any]) -> None:
        self.calls: list[tuple[str, str, str, dict[str, Any]]] = []
        self._answers = list(answers)

    async def request(self, source: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.calls.append((source, method, path, kwargs))
        status, body = self._answers.pop(0)
        return httpx.Response(status, content=json.dumps(body).encode())


async def test_what_the_client_sends() -> None:
    token = {"access_token": "ya29.canned", "expires_in": 3599, "token_type": "Bearer"}
    http = CannedHttp(
        (200, token),
        (200, load("report_city.json")),
        (200, load("report_country.json")),
        (200, load("report_gender_age.json")),
    )
    credential = grant(DEMO_CHANNEL_ID)
    found = await YouTubeAnalyticsClient(http).channel_insights(  # type: ignore[arg-type]
        DEMO_CHANNEL_ID, credential=credential, request_id="r1"
    )
    assert found.profile.dimensions["city"] == parse_views_by(load("report_city.json"), "city")
    assert found.failed == {}
    source, method, path, kwargs = http.calls[0]
    assert (source, method, path) == (TOKEN_SOURCE, "POST", "/token")
    assert kwargs == {
        "credential": credential,
        "request_id": "r1",
        "secrets_as_headers": False,
        "data": {
            "client_secret": CLIENT_SECRET,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token_for(DEMO_CHANNEL_ID),
            "client_id": "sandbox-client.apps.googleusercontent.com",
        },
    }
    today = utcnow().date().isoformat()
    asked = [
        (call[0], call[2], call[3]["params"], call[3]["headers"], call[3]["secrets_as_headers"])
        for call in http.calls[1:]
    ]
    base = {"ids": "channel==MINE", "startDate": "2000-01-01", "endDate": today}
    bearer = {"Authorization": "Bearer ya29.canned"}
    assert asked == [
        (
            REPORTS_SOURCE,
            "/v2/reports",
            base | {"dimensions": "city", "metrics": "views", "maxResults": "50", "sort": "-views"},
            bearer,
            False,
        ),
        (
            REPORTS_SOURCE,
            "/v2/reports",
            base | {"dimensions": "country", "metrics": "views", "maxResults": "10", "sort": "-views"},
            bearer,
            False,
        ),
        # A channel report: no isCurated filter (it made the legacy's a playlist report, and is refused now).
        (
            REPORTS_SOURCE,
            "/v2/reports",
            base | {"dimensions": "ageGroup,gender", "metrics": "viewerPercentage"},
            bearer,
            False,
        ),
    ]
    assert all("filters" not in call[3]["params"] for call in http.calls[1:])


async def test_a_failed_report_does_not_discard_the_others() -> None:
    unsupported = load("error_query_not_supported.json")
    http = CannedHttp(
        (200, {"access_token": "ya29.t"}),
        (200, load("report_city.json")),
        (400, unsupported),
        (200, load("report_gender_age.json")),
    )
    found = await YouTubeAnalyticsClient(http).channel_insights(  # type: ignore[arg-type]
        DEMO_CHANNEL_ID, credential=grant(DEMO_CHANNEL_ID)
    )
    assert found.profile.dimensions == {
        "city": parse_views_by(load("report_city.json"), "city"),
        "gender_age": parse_gender_age(load("report_gender_age.json")),
    }
    assert found.failed == {
        "country": "InputRejected: GET /v2/reports answered 400 badRequest: " + unsupported["error"]["message"]
    }
    # A report whose rows do not parse fails on its own too.
    broken = load("report_city.json")
    broken["rows"][0][1] = "lots"
    http = CannedHttp(
        (200, {"access_token": "ya29.t"}),
        (200, broken),
        (200, load("report_country.json")),
        (200, load("report_gender_age.json")),
    )
    found = await YouTubeAnalyticsClient(http).channel_insights(  # type: ignore[arg-type]
        DEMO_CHANNEL_ID, credential=grant(DEMO_CHANNEL_ID)
    )
    assert set(found.profile.dimensions) == {"country", "gender_age"}
    assert found.failed == {"city": "BadResponse: views is not a count: 'lots'"}


async def test_when_every_report_fails_the_call_fails_naming_each() -> None:
    unsupported = load("error_query_not_supported.json")
    http = CannedHttp((200, {"access_token": "ya29.t"}), (400, unsupported), (400, unsupported), (400, unsupported))
    with pytest.raises(InputRejected) as raised:
        await YouTubeAnalyticsClient(http).channel_insights(  # type: ignore[arg-type]
            DEMO_CHANNEL_ID, credential=grant(DEMO_CHANNEL_ID)
        )
    assert str(raised.value).startswith("yt-analytics: every report failed: city: InputRejected: GET /v2/reports")
    assert all(
        f"{name}: InputRejected: GET /v2/reports answered 400 badRequest" in str(raised.value)
        for name in ("city", "country", "gender_age")
    )


async def test_a_refused_token_ends_the_call_at_once() -> None:
    # Every report would fail alike, and the crawler must see the class to rest or expire the credential.
    http = CannedHttp(
        (200, {"access_token": "ya29.t"}),
        (200, load("report_city.json")),
        (401, {"error": {"code": 401, "message": "Invalid Credentials", "errors": [{"reason": "authError"}]}}),
    )
    with pytest.raises(AuthExpired, match="401 authError"):
        await YouTubeAnalyticsClient(http).channel_insights(  # type: ignore[arg-type]
            DEMO_CHANNEL_ID, credential=grant(DEMO_CHANNEL_ID)
        )
    assert len(http.calls) == 3


@pytest.mark.parametrize(
    ("answers", "expected", "text"),
    [
        (
            [(400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."})],
            AuthExpired,
            "refresh token refused",
        ),
        ([(401, {"error": "invalid_client", "error_description": "Unauthorized"})], AuthExpired, "invalid_client"),
        (
            [(400, {"error": "invalid_request", "error_description": "Missing required parameter"})],
            BadResponse,
            "invalid_request",
        ),
        ([(200, {"expires_in": 3599})], BadResponse, "no access_token"),
        (
            [
                (200, {"access_token": "ya29.t"}),
                *[
                    (
                        412,
                        {
                            "error": {
                                "code": 412,
                                "message": "Precondition failed",
                                "errors": [{"reason": "conditionNotMet"}],
                            }
                        },
                    )
                ]
                * 3,
            ],
            StartDateAfterEndDate,
            "412: Precondition failed",
        ),
        (
            [
                (200, {"access_token": "ya29.t"}),
                (401, {"error": {"code": 401, "message": "Invalid Credentials", "errors": [{"reason": "authError"}]}}),
            ],
            AuthExpired,
            "401 authError",
        ),
        (
            [
                (200, {"access_token": "ya29.t"}),
                (403, {"error": {"code": 403, "message": "Forbidden", "errors": [{"reason": "forbidden"}]}}),
            ],
            AuthExpired,
            "403 forbidden",
        ),
        (
            [
                (200, {"access_token": "ya29.t"}),
                (403, {"error": {"code": 403, "message": "Quota", "errors": [{"reason": "quotaExceeded"}]}}),
            ],
            QuotaExceeded,
            "403 quotaExceeded",
        ),
    ],
)
async def test_refusals(answers: list[tuple[int, Any]], expected: type[ProviderError], text: str) -> None:
    client = YouTubeAnalyticsClient(CannedHttp(*answers))  # type: ignore[arg-type]
    with pytest.raises(expected, match=text) as raised:
        await client.channel_insights(DEMO_CHANNEL_ID, credential=grant(DEMO_CHANNEL_ID))
    assert CLIENT_SECRET not in str(raised.value) and "ya29.t" not in str(raised.value)


async def test_a_credential_must_be_whole_and_the_channel_s_own() -> None:
    client = YouTubeAnalyticsClient(CannedHttp())  # type: ignore[arg-type]
    with pytest.raises(Forbidden, match="belongs to another channel"):
        await client.channel_insights(HIDDEN_SUBSCRIBERS_CHANNEL_ID, credential=grant(DEMO_CHANNEL_ID))
    partial = Credential(id="oauth-x", source=SOURCE, secrets={"refresh_token": "r", "channel_id": DEMO_CHANNEL_ID})
    with pytest.raises(AuthExpired, match="has no client_id, client_secret"):
        await client.channel_insights(DEMO_CHANNEL_ID, credential=partial)


# Over loopback HTTP


async def test_channel_insights(
    http: ProviderHttp, world: YouTubeWorld, traces: list[TraceLog], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    credential = grant(DEMO_CHANNEL_ID)
    found = await YouTubeAnalyticsClient(http).channel_insights(DEMO_CHANNEL_ID, credential=credential, request_id="r7")
    insights = found.profile
    channel = world.channel(DEMO_CHANNEL_ID)
    assert channel is not None
    audience = world.audience(channel)
    assert found.failed == {}
    assert insights.profile_id == DEMO_CHANNEL_ID and insights.kind == "profile_insights"
    assert insights.dimensions["city"] == dict(audience.cities)
    assert insights.dimensions["country"] == dict(audience.countries[:10])
    shares = insights.dimensions["gender_age"]
    assert shares["female"] == {group: pct for gender, group, pct in audience.gender_age if gender == "female"}
    assert set(shares) == {"female", "male", "uncategorized"}
    assert [(t.source, t.method, t.path, t.status, t.credential_id, t.request_id) for t in traces] == [
        (TOKEN_SOURCE, "POST", f"/{TOKEN_SOURCE}/token", 200, credential.id, "r7"),
        *[(REPORTS_SOURCE, "GET", f"/{REPORTS_SOURCE}/v2/reports", 200, credential.id, "r7")] * 3,
    ]
    secrets = [str(value) for name, value in credential.secrets.items() if name != "channel_id"]
    for secret in [*secrets, "ya29."]:
        assert all(secret not in trace.model_dump_json() for trace in traces)
        assert secret not in caplog.text


async def test_refused_grants_and_report_failures(server: LoopbackServer, http: ProviderHttp) -> None:
    client = YouTubeAnalyticsClient(http)
    revoked = grant(DEMO_CHANNEL_ID, refresh_token="revoked-1//0gSecretRefresh")
    with pytest.raises(AuthExpired, match="invalid_grant Token has been expired or revoked") as raised:
        await client.channel_insights(DEMO_CHANNEL_ID, credential=revoked)
    assert "0gSecretRefresh" not in str(raised.value)
    # The sandbox's knobs answer the reports 412 or 401 in the gateway's words.
    for status, expected in ((412, StartDateAfterEndDate), (401, AuthExpired)):
        server.state.replace(SandboxConfig(fail_paths={"/yt-analytics/": status}))
        with pytest.raises(expected, match=f"GET /v2/reports answered {status}"):
            await client.channel_insights(DEMO_CHANNEL_ID, credential=grant(DEMO_CHANNEL_ID))
    server.state.replace(SandboxConfig())
    assert (await client.channel_insights(DEMO_CHANNEL_ID, credential=grant(DEMO_CHANNEL_ID))).profile.dimensions[
        "city"
    ]


async def test_one_report_down_keeps_the_others(
    http: ProviderHttp, world: YouTubeWorld, traces: list[TraceLog]
) -> None:
    """The sandbox's channel whose city report backend is down: the country and age × gender reports arrive."""
    channel = world.channel(CITY_REPORT_DOWN_CHANNEL_ID)
    assert channel is not None and world.report_outage(channel) == "city"
    found = await YouTubeAnalyticsClient(http).channel_insights(
        CITY_REPORT_DOWN_CHANNEL_ID, credential=grant(CITY_REPORT_DOWN_CHANNEL_ID)
    )
    audience = world.audience(channel)
    assert set(found.profile.dimensions) == {"country", "gender_age"}
    assert found.profile.dimensions["country"] == dict(audience.countries)
    assert found.failed == {"city": "ProviderUnavailable: GET /v2/reports answered 503"}
    assert [t.status for t in traces] == [200, 503, 200, 200]


async def test_the_sandbox_refuses_is_curated_on_channel_reports(server: LoopbackServer) -> None:
    """As the real API does since 2024-06-30: 400 in Google's error shape, however the filter is spelled in."""
    async with httpx.AsyncClient(base_url=server.url) as client:
        token = (
            await client.post(
                f"/{TOKEN_SOURCE}/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": refresh_token_for(DEMO_CHANNEL_ID),
                    "client_id": "c",
                    "client_secret": "s",
                },
            )
        ).json()["access_token"]
        base = {
            "ids": "channel==MINE",
            "startDate": "2000-01-01",
            "endDate": utcnow().date().isoformat(),
            "dimensions": "ageGroup,gender",
            "metrics": "viewerPercentage",
        }

        async def ask(**extra: str) -> httpx.Response:
            return await client.get(
                f"/{REPORTS_SOURCE}/v2/reports", params=base | extra, headers={"Authorization": f"Bearer {token}"}
            )

        for filters in ("isCurated==1", "country==IN;isCurated==1"):
            refused = await ask(filters=filters, sort="-viewerPercentage")
            assert refused.status_code == 400
            error = parse_error(400, refused.text)
            assert (error.reason, error.message) == (
                "badRequest",
                load("error_query_not_supported.json")["error"]["message"],
            )
            assert refused.json()["error"]["status"] == "INVALID_ARGUMENT"
        # The same report without it answers, its columns in the order the query names them.
        answered = await ask()
        assert answered.status_code == 200
        assert [h["name"] for h in answered.json()["columnHeaders"]] == ["ageGroup", "gender", "viewerPercentage"]
        legacy_order = await ask(dimensions="gender,ageGroup")
        assert [h["name"] for h in legacy_order.json()["columnHeaders"]] == ["gender", "ageGroup", "viewerPercentage"]
        assert parse_gender_age(legacy_order.json()) == parse_gender_age(answered.json())
