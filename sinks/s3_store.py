"""The S3 asset store (aioboto3): one long-lived client per process, one ``put_object`` per asset.

A single PUT replaces an object atomically, so concurrent uploads for one entity leave
one whole object, never a mix. Any S3-compatible endpoint works (MinIO, moto).
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError, ClientError

from sinks.assets import AssetStoreError, StoredAsset

log = logging.getLogger(__name__)

# Uploads run inside flows at up to the asset flows' concurrency (75 + 15 by default);
# botocore's default pool of 10 connections would queue them behind each other.
MAX_POOL_CONNECTIONS = 100
# A report's multipart upload part: S3 takes 5 MiB at least (but for the last part); 8 MiB halves the calls.
PART_BYTES = 8 * 1024 * 1024


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

    async def open_upload(self, key: str, content_type: str) -> S3Upload:
        try:
            started = await self._client.create_multipart_upload(Bucket=self._bucket, Key=key, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise AssetStoreError(f"cannot start s3://{self._bucket}/{key}: {exc}") from exc
        return S3Upload(self._client, self._bucket, key, started["UploadId"])

    async def aclose(self) -> None:
        await self._stack.aclose()


class S3Upload:
    """A multipart upload: chunks are gathered into parts of ``PART_BYTES`` (S3's minimum is 5 MiB but for the
    last part), so memory holds one part at most whatever the object's size."""

    def __init__(self, client: Any, bucket: str, key: str, upload_id: str) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._id = upload_id
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []

    async def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        if len(self._buffer) >= PART_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        number = len(self._parts) + 1
        try:
            answer = await self._client.upload_part(
                Bucket=self._bucket, Key=self._key, UploadId=self._id, PartNumber=number, Body=bytes(self._buffer)
            )
        except (BotoCoreError, ClientError) as exc:
            raise AssetStoreError(f"cannot upload part {number} of s3://{self._bucket}/{self._key}: {exc}") from exc
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        self._buffer = bytearray()

    async def complete(self) -> str:
        try:
            if self._buffer or not self._parts:
                await self._flush()
            await self._client.complete_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._id, MultipartUpload={"Parts": self._parts}
            )
        except (BotoCoreError, ClientError) as exc:
            await self.abort()
            raise AssetStoreError(f"cannot complete s3://{self._bucket}/{self._key}: {exc}") from exc
        except AssetStoreError:
            await self.abort()
            raise
        return f"s3://{self._bucket}/{self._key}"

    async def abort(self) -> None:
        try:
            await self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._id)
        except (BotoCoreError, ClientError) as exc:
            # The parts stay billed until the bucket's lifecycle rule for incomplete uploads removes them.
            log.warning("cannot abort the upload of s3://%s/%s: %s", self._bucket, self._key, exc)
