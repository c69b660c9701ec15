"""The embedded asset store: files under one directory, laid out like the S3 keys."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from sinks.assets import AssetStoreError, StoredAsset, content_type_of


class LocalAssetStore:
    def __init__(self, root: Path) -> None:
        self._root = Path(root).resolve()

    def describe(self) -> str:
        return str(self._root)

    def path_of(self, key: str) -> Path:
        path = (self._root / key).resolve()
        # asset_key already refuses separators in ids; this guards every other caller.
        if not path.is_relative_to(self._root) or path == self._root:
            raise ValueError(f"key {key!r} is outside the asset directory")
        return path

    async def put(self, key: str, body: bytes, content_type: str) -> StoredAsset:
        path = self.path_of(key)
        try:
            # Off the event loop: a video is megabytes, and the worker runs many flows at once.
            await asyncio.to_thread(_replace, path, body)
        except OSError as exc:
            raise AssetStoreError(f"cannot write {path}: {exc}") from exc
        return StoredAsset(key, len(body), content_type)

    async def stat(self, key: str) -> StoredAsset | None:
        path = self.path_of(key)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AssetStoreError(f"cannot read {path}: {exc}") from exc
        # The key's extension fixed the content type when it was written.
        return StoredAsset(key, size, content_type_of(key))

    async def open_upload(self, key: str, content_type: str) -> LocalUpload:
        return LocalUpload(self.path_of(key))

    async def aclose(self) -> None:
        return None


class LocalUpload:
    """A file written beside its target and renamed over it when complete, like ``_replace``."""

    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        self._temp = Path(temp)
        os.fchmod(fd, 0o644)
        self._out = os.fdopen(fd, "wb")

    async def write(self, chunk: bytes) -> None:
        # A chunk is tens of kilobytes into the page cache: cheaper inline than a thread hop per chunk.
        try:
            self._out.write(chunk)
        except OSError as exc:
            raise AssetStoreError(f"cannot write {self._path}: {exc}") from exc

    async def complete(self) -> str:
        try:
            self._out.flush()
            await asyncio.to_thread(os.fsync, self._out.fileno())
            self._out.close()
            os.replace(self._temp, self._path)
        except OSError as exc:
            await self.abort()
            raise AssetStoreError(f"cannot write {self._path}: {exc}") from exc
        return str(self._path)

    async def abort(self) -> None:
        self._out.close()
        self._temp.unlink(missing_ok=True)


def _replace(path: Path, body: bytes) -> None:
    """Write beside the target, then rename over it: readers see the old file or the new one, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            # mkstemp makes the file private; assets are meant to be served.
            os.fchmod(out.fileno(), 0o644)
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
