"""A YouTube handle to its channel id: the Data API's forHandle and the channel page, against the sandbox."""

from __future__ import annotations

import pytest

from providers.errors import BadResponse
from providers.http import Credential
from providers.sandbox.youtube import YouTubeWorld, channel_id_for
from providers.youtube.youtube_data import YouTubeDataClient, parse_handle_channel
from providers.youtube.youtube_web import YouTubeWebClient, channel_id_in_page

KEY = Credential(id="1", source="ytapitoken", secrets={"key": "sandbox-yt-key"})
CHANNEL = channel_id_for(7)
HANDLE = YouTubeWorld()._channel(7).custom_url


async def test_for_handle(sandbox_http):
    client = YouTubeDataClient(sandbox_http("ytapitoken"))
    assert HANDLE and await client.channel_id_for_handle(HANDLE, credential=KEY) == CHANNEL
    assert await client.channel_id_for_handle(HANDLE.upper(), credential=KEY) == CHANNEL
    assert await client.channel_id_for_handle("@nobody_has_this_one", credential=KEY) is None


async def test_channel_page(sandbox_http):
    client = YouTubeWebClient(sandbox_http("youtube-web"))
    assert await client.channel_id_for_handle(HANDLE) == CHANNEL
    assert await client.channel_id_for_handle("@nobody_has_this_one") is None


def test_page_parser_reads_the_canonical_link_or_the_page_data():
    assert channel_id_in_page(f'<link rel="canonical" href="https://www.youtube.com/channel/{CHANNEL}">') == CHANNEL
    assert channel_id_in_page(f'{{"metadata":{{"externalId":"{CHANNEL}"}}}}') == CHANNEL
    assert channel_id_in_page("<html>consent wall</html>") is None


def test_for_handle_parser():
    assert parse_handle_channel({"kind": "youtube#channelListResponse", "items": [{"id": CHANNEL}]}) == CHANNEL
    assert parse_handle_channel({"kind": "youtube#channelListResponse", "pageInfo": {"totalResults": 0}}) is None
    with pytest.raises(BadResponse):
        parse_handle_channel({"items": [{"kind": "youtube#channel"}]})
