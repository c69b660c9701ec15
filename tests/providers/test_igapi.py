"""IGApi: the pure followers parser on recorded-shape fixtures, and the client against the sandbox over loopback
HTTP."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import httpx
import pytest

from providers.errors import BadResponse, ProfileMissing
from providers.http import Credential, ProviderHttp
from providers.instagram import arraybobo, rocketapi
from providers.instagram.igapi import SOURCE, IGApiClient, parse_followers_page
from tests.support import SandboxHttp, every_page, load_fixture
from topics.models import Platform

MEERA = "31566076502"
KEY = Credential(
    id="ig-1", source=SOURCE, secrets={"x-rapidapi-key": "ig-k1", "x-rapidapi-host": "igdata.p.rapidapi.com"}
)
TOKEN = Credential(id="rocket-1", source=rocketapi.SOURCE, secrets={"Authorization": "Token rk-1"})


load = partial(load_fixture, "igapi")


def test_followers_page() -> None:
    payload = load("web_followers.json")
    page = parse_followers_page(payload, profile_id=MEERA)
    node = payload["edges"][0]["node"]

    assert page.next_cursor == "d2ViX2ZvbGxvd2VyczozMTU2NjA3NjUwMjo1MA"
    assert len(page.items) == 50
    first = page.items[0]
    assert (first.platform, first.source, first.kind, first.relationship_type) == (
        Platform.INSTAGRAM,
        SOURCE,
        "relationship",
        "FOLLOWS",
    )
    assert (first.source_profile_id, first.target_profile_id) == ("3316649498", MEERA)
    assert first.source_dimensions == {
        "handle": "aarav.fit0",
        "full_name": "Aarav Fit",
        "profile_pic_url": node["profile_pic_url"],
        "is_private": False,
        "is_verified": False,
    }
    # This node's id arrived as a number.
    assert page.items[2].source_profile_id == "40279520794"
    assert sum(follow.source_dimensions["is_private"] for follow in page.items) == 6


def test_small_account_s_last_page_is_the_end() -> None:
    page = parse_followers_page(load("web_followers_last_page.json"), profile_id=62871384561)  # type: ignore[arg-type]
    assert page.next_cursor is None and len(page.items) == 38
    assert page.items[-1].source_dimensions["handle"] == "zoya.diaries787"
    assert {follow.target_profile_id for follow in page.items} == {"62871384561"}


def test_a_big_list_that_ends_early_is_refused() -> None:
    payload = load("web_followers_stopped_early.json")
    with pytest.raises(BadResponse, match="1125735 followers ended without a next page"):
        parse_followers_page(payload, profile_id="68154663248")
    payload["page_info"] = {"has_next_page": True, "end_cursor": ""}
    with pytest.raises(BadResponse, match="stopped early"):
        parse_followers_page(payload, profile_id="68154663248")
    payload["page_info"]["end_cursor"] = "next"
    assert parse_followers_page(payload, profile_id="68154663248").next_cursor == "next"


def test_missing_fields_and_refusals() -> None:
    payload = load("web_followers.json")
    del payload["count"]
    for key in ("full_name", "is_verified"):
        del payload["edges"][0]["node"][key]
    first = parse_followers_page(payload, profile_id=MEERA).items[0]
    assert first.source_dimensions["full_name"] is None and first.source_dimensions["is_verified"] is None

    with pytest.raises(ProfileMissing, match="User not found"):
        parse_followers_page(load("not_found.json"), profile_id=MEERA)
    with pytest.raises(BadResponse, match="no edges or page_info"):
        parse_followers_page({"edges": []}, profile_id=MEERA)
    payload = load("web_followers.json")
    del payload["edges"][4]["node"]["id"]
    with pytest.raises(BadResponse, match="no id"):
        parse_followers_page(payload, profile_id=MEERA)


class RecordingHttp:
    """Stands in for ProviderHttp to show what the client asks for."""

    def __init__(self, body: Any) -> None:
        self.calls: list[tuple[str, str, str, dict[str, Any]]] = []
        self._response = httpx.Response(200, content=json.dumps(body).encode())

    async def request(self, source: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.calls.append((source, method, path, kwargs))
        return self._response


async def test_client_asks_for_an_uncompressed_answer() -> None:
    http = RecordingHttp(load("web_followers.json"))
    await IGApiClient(http).followers(MEERA, "cursor-1", credential=KEY, request_id="r1")  # type: ignore[arg-type]
    assert http.calls == [
        (
            SOURCE,
            "GET",
            "/web_followers",
            {
                "credential": KEY,
                "params": {"user_id": MEERA, "cursor": "cursor-1"},
                "headers": {"Accept-Encoding": ""},
                "request_id": "r1",
            },
        )
    ]


# Over loopback HTTP


@pytest.fixture
def http(sandbox_http: SandboxHttp) -> ProviderHttp:
    return sandbox_http(SOURCE, rocketapi.SOURCE, arraybobo.SOURCE)


async def test_followers_page_to_the_end_and_match_rocketapi(http: ProviderHttp) -> None:
    igapi = IGApiClient(http)
    profile = await arraybobo.ArrayBoboClient(http).profile_by_handle("kabir.fit", credential=KEY)
    follows, pages = await every_page(lambda cursor: igapi.followers(profile.profile_id, cursor, credential=KEY))
    assert len(follows) == profile.metrics["followers"] and pages == -(-len(follows) // 50)
    assert len({follow.source_profile_id for follow in follows}) == len(follows)

    rocket = rocketapi.RocketAPIClient(http)
    expected, _ = await every_page(lambda cursor: rocket.followers(profile.profile_id, cursor, credential=TOKEN))
    assert [(f.source_profile_id, f.source_dimensions) for f in follows] == [
        (f.source_profile_id, f.source_dimensions) for f in expected
    ]


async def test_a_big_account_s_list_stops_early_and_is_refused(http: ProviderHttp) -> None:
    igapi = IGApiClient(http)
    profile = await arraybobo.ArrayBoboClient(http).profile_by_handle("diya.diaries", credential=KEY)
    assert profile.metrics["followers"] >= 10_000
    cursor, pages = None, 0
    with pytest.raises(BadResponse, match="stopped early"):  # noqa: PT012 - whichever page passes the cap refuses
        while True:
            page = await igapi.followers(profile.profile_id, cursor, credential=KEY)
            pages += 1
            cursor = page.next_cursor
    assert pages == 19


async def test_unknown_and_private_profiles(http: ProviderHttp) -> None:
    igapi = IGApiClient(http)
    with pytest.raises(ProfileMissing, match="404"):
        await igapi.followers("not-a-number", credential=KEY)
    bobo = arraybobo.ArrayBoboClient(http)
    # A private account's followers are hidden: an empty last page, unless the count gives it away as cut short.
    small = await bobo.profile_by_handle("private.sana", credential=KEY)
    page = await igapi.followers(small.profile_id, credential=KEY)
    assert (page.items, page.next_cursor) == ([], None)
    big = await bobo.profile_by_handle("private.tara", credential=KEY)
    assert big.metrics["followers"] >= 10_000
    with pytest.raises(BadResponse, match="stopped early"):
        await igapi.followers(big.profile_id, credential=KEY)
