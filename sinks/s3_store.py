"""The S3 asset store (aioboto3): one long-lived client per process, one ``put_object`` per asset.

A single PUT replaces an object atomically, so concurrent uploads for one entity leave
one whole object, never a mix. Any S3-compatible endpoint works (MinIO, moto).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError, ClientError

from sinks.assets import AssetStoreError, StoredAsset

# Uploads run inside flows at up to the asset flows' concurrency (75 + 15 by default);
# botocore's default pool of 10 connections would queue them behind each other.
MAX_POOL_CONNECTIONS = 100


class S3AssetStore:
    def __init__(self, client: Any, bucket: str, stack: AsyncExitStack) -> None:
        self._client = client
        self._bucket = bucket
        self._stack = stack

    @classmethod
    async def open(
        cls,
        *,
        bucket: str,
        endpoint_url: str | None,
        region: str,
        access_key_id: str | None,
        secret_access_key: str | None,
        timeout: float,
    ) -> S3AssetStore:
        """Without keys, botocore's usual chain applies (environment, profile, instance role)."""
        config = AioConfig(
            connect_timeout=timeout,
            read_timeout=timeout,
            max_pool_connections=MAX_POOL_CONNECTIONS,
            retries={"max_attempts": 3, "mode": "standard"},
            # S3-compatible stores on a host:port (MinIO, moto) address buckets by path.
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        stack = AsyncExitStack()
        client = await stack.enter_async_context(
            aioboto3.Session().client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region,
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
                config=config,
            )
        )
        return cls(client, bucket, stack)

    def describe(self) -> str:
        return f"s3://{self._bucket}"

    async def put(self, key: str, body: bytes, content_type: str) -> StoredAsset:
        try:
            await self._client.put_object(
                Bucket=self._bucket, Key=key, Body=body, ContentType=content_type, ContentDisposition="inline"
            )
        except (BotoCoreError, ClientError) as exc:
            raise AssetStoreError(f"cannot put s3://{self._bucket}/{key}: {exc}") from exc
        return StoredAsset(key, len(body), content_type)

    async def stat(self, key: str) -> StoredAsset | None:
        try:
            head = await self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise AssetStoreError(f"cannot read s3://{self._bucket}/{key}: {exc}") from exc
        except BotoCoreError as exc:
            raise AssetStoreError(f"cannot read s3://{self._bucket}/{key}: {exc}") from exc
        return StoredAsset(key, head["ContentLength"], head.get("ContentType", ""))

    async def aclose(self) -> None:
        await self._stack.aclose()
