"""Snapshot archive files on disk (`<root>/snapshots/<tenant>/<id>/<id>.zip`), streamed in and out."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator

CHUNK = 256 * 1024


class ArchiveStore:
    """Where the manager's file server keeps snapshot zips; never held only in memory."""

    def __init__(self, root: str | None) -> None:
        self._tmp = None if root else tempfile.TemporaryDirectory(prefix="cfy-sim-")
        self.root = root or self._tmp.name  # type: ignore[union-attr]
        os.makedirs(os.path.join(self.root, "snapshots"), exist_ok=True)

    def folder(self, tenant: str, sid: str) -> str:
        """The folder holding snapshot `sid` of `tenant`."""
        return os.path.join(self.root, "snapshots", _safe(tenant), _safe(sid))

    def path(self, tenant: str, sid: str) -> str:
        """The zip path of snapshot `sid`."""
        return os.path.join(self.folder(tenant, sid), f"{_safe(sid)}.zip")

    def exists(self, tenant: str, sid: str) -> bool:
        """Whether the zip is on disk."""
        return os.path.isfile(self.path(tenant, sid))

    def size(self, tenant: str, sid: str) -> int:
        """The zip's size in bytes."""
        return os.path.getsize(self.path(tenant, sid))

    def temp_path(self, tenant: str, sid: str) -> str:
        """A fresh temporary path next to the final zip (rename it into place when complete)."""
        folder = self.folder(tenant, sid)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".part-", dir=folder)
        os.close(fd)
        return tmp

    def commit(self, tenant: str, sid: str, tmp: str) -> None:
        """Move a completed temporary file into place (replacing any previous zip)."""
        os.replace(tmp, self.path(tenant, sid))

    def receive(self, tenant: str, sid: str, chunks: Iterable[bytes]) -> str:
        """Write an uploaded body to a temporary file; return its path (not yet committed)."""
        tmp = self.temp_path(tenant, sid)
        try:
            with open(tmp, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
        except BaseException:
            os.unlink(tmp)
            raise
        return tmp

    def remove(self, tenant: str, sid: str) -> None:
        """Delete the snapshot's folder and zip."""
        shutil.rmtree(self.folder(tenant, sid), ignore_errors=True)

    def stream(self, tenant: str, sid: str, limit: int | None = None,
               corrupt: bool = False) -> Iterable[bytes]:
        """The zip as a response body; cut after `limit` bytes and with bytes flipped if `corrupt`."""
        if limit is None and not corrupt:
            return FileBody(self.path(tenant, sid))
        return self._faulty(tenant, sid, limit, corrupt)

    def _faulty(self, tenant: str, sid: str, limit: int | None, corrupt: bool) -> Iterator[bytes]:
        sent = 0
        path = self.path(tenant, sid)
        eocd = os.path.getsize(path) - 22  # where a zip's end-of-central-directory record starts
        with open(path, "rb") as handle:
            while limit is None or sent < limit:
                want = CHUNK if limit is None else min(CHUNK, limit - sent)
                data = handle.read(want)
                if not data:
                    return
                if corrupt:
                    data = _corrupt(data, sent, eocd)
                sent += len(data)
                yield data

    def close(self) -> None:
        """Remove the private temporary folder, if one was made."""
        if self._tmp is not None:
            self._tmp.cleanup()


class FileBody:
    """A whole file as a response body: iterated in chunks, or handed to the kernel with sendfile by a
    server that can (as nginx serves snapshot archives on a real manager)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as handle:
            while data := handle.read(CHUNK):
                yield data


def _corrupt(data: bytes, offset: int, eocd: int) -> bytes:
    """Damage a chunk: invert every 997th byte and the end record's signature (same length, not a zip)."""
    buf = bytearray(data)
    for i in range(-offset % 997, len(buf), 997):
        buf[i] ^= 0xFF
    if offset <= eocd < offset + len(buf):
        buf[eocd - offset] ^= 0x5A
    return bytes(buf)


MAX_COMPONENT = 200  # below a file system's 255-byte name limit, leaving room for `.zip` and `.part-XXXXXXXX`


def _safe(name: str) -> str:
    """A path component that cannot escape the folder (upload ids are not validated by the manager) and fits a
    file system's name limit: an id of up to 256 characters (the manager's limit) is shortened, kept unique by
    its hash."""
    cleaned = name.replace("/", "_").replace("\\", "_")
    cleaned = "_" + cleaned if cleaned in ("", ".", "..") else cleaned
    if len(cleaned.encode()) <= MAX_COMPONENT:
        return cleaned
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{cleaned.encode()[:MAX_COMPONENT - 17].decode(errors='ignore')}-{digest}"
