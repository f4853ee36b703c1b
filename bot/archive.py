"""The off-manager snapshot archive: streamed, verified copies in a folder (or S3), known to the catalog.

A download is written in fixed-size chunks to a temporary file beside its final place (never the whole
archive in memory), counted against Content-Length, hashed and its members' CRCs checked while it streams
(`bot.zipcheck`); then it must be a zip whose central directory agrees with those members (any member the
stream could not follow is read back and checked) and whose `metadata.json` names a `snapshot_version`. Only
then is it renamed into place and recorded in the catalog as verified. Anything else removes the partial
file, leaves the catalog as it was, and raises ArchiveError saying what happened.

Order of the last two steps: the copy is put in place first and recorded second, so the catalog never
names a copy that is not there (a crash in between leaves an unrecorded file, which the next download of
the same snapshot replaces).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import queue
import re
import secrets
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO
from urllib.parse import quote

from bot.clock import Clock
from bot.errors import ArchiveError, BotError, ManagerError, NotFound
from bot.zipcheck import StreamCheck, check_members

CHUNK_SIZE = 1 << 20  # every read and write is at most this big: memory stays flat whatever the size
VERSION = re.compile(r"^\d+(\.\d+)+([.+-]?[A-Za-z0-9.+-]*)?$")
LEGACY_KEYS = ("schema_revision", "stage_schema_revision", "composer_schema_revision")
QUEUE_DEPTH = 4  # chunks between receiving and writing: at most 4 MiB in flight
SYNC_EVERY = 32 << 20  # start persisting every 32 MiB, so the disk works while the download goes on
STALE_PART = 24 * 3600.0  # a temp file untouched this long belongs to no running download
MAX_METADATA = 1 << 20  # a metadata.json bigger than this is not one the manager wrote

Progress = Callable[[int, int | None], None]  # (bytes so far, expected total or None)


@dataclass(frozen=True)
class Checked:
    """What the checks learnt about an archive file."""

    sha256: str
    size: int
    snapshot_version: str
    layout: str  # "legacy" | "new"


def safe_name(text: str) -> str:
    """A file or folder name for a manager name or snapshot id (never a path, never `.` or `..`)."""
    name = quote(text, safe="-_.~")
    if name in ("", ".", ".."):
        raise ArchiveError(f"{text!r} cannot be used as a name in the archive")
    return name


def _count(n: int, total: int | None = None) -> str:
    return f"{n} of {total} bytes" if total is not None else f"{n} bytes"


# --- the checks ---------------------------------------------------------------------------------------


def check_zip(path: str, streamed: StreamCheck | None = None) -> tuple[str, str]:
    """Check the zip at `path` (every member's CRC, `metadata.json`); its (snapshot_version, layout).

    Members that `streamed` already checked while the file was written are not read again."""
    try:
        with zipfile.ZipFile(path) as zf:
            metadata = _metadata(zf)
            check_members(zf, streamed, CHUNK_SIZE)
            layout = "legacy" if all(k in metadata for k in LEGACY_KEYS) else "new"
            if layout == "new":
                _check_new_layout(zf)
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"it is not a readable zip file ({exc})") from None
    except (zlib.error, EOFError) as exc:
        raise ArchiveError(f"it is a damaged zip file ({exc})") from None
    except (NotImplementedError, RuntimeError) as exc:  # unknown compression, encrypted members
        raise ArchiveError(f"it is a zip the bot cannot read ({exc})") from None
    return str(metadata["snapshot_version"]), layout


def _metadata(zf: zipfile.ZipFile) -> dict[str, Any]:
    try:
        info = zf.getinfo("metadata.json")
    except KeyError:
        raise ArchiveError("it has no metadata.json at its root, so it is not a Cloudify snapshot") from None
    if info.file_size > MAX_METADATA:
        raise ArchiveError(f"its metadata.json is {info.file_size} bytes: not a snapshot's metadata")
    try:
        metadata = json.loads(zf.read(info))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"its metadata.json does not parse ({exc})") from None
    if not isinstance(metadata, dict):
        raise ArchiveError("its metadata.json is not a JSON object")
    version = metadata.get("snapshot_version")
    if not isinstance(version, str) or not VERSION.match(version):
        raise ArchiveError(f"its metadata.json names no usable snapshot_version ({version!r})")
    return metadata


def _check_new_layout(zf: zipfile.ZipFile) -> None:
    """New-format (7.0+) dumps: every `mgmt/*.json` is a {"type", "items"} document."""
    for info in zf.infolist():
        if not (info.filename.startswith("mgmt/") and info.filename.endswith(".json")):
            continue
        try:
            doc = json.loads(zf.read(info))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ArchiveError(f"its {info.filename} does not parse ({exc})") from None
        if not (isinstance(doc, dict) and "type" in doc and "items" in doc):
            raise ArchiveError(f"its {info.filename} is not a {{type, items}} document")


def check_file(path: str) -> Checked:
    """Hash and check one archive file, reading it once (its members are checked as the bytes pass)."""
    sha, size, streamed = hashlib.sha256(), 0, StreamCheck()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_SIZE):
            sha.update(chunk)
            streamed.feed(chunk)
            size += len(chunk)
    version, layout = check_zip(path, streamed)
    return Checked(sha.hexdigest(), size, version, layout)


class _Stage:
    """One thread that does `work` to every queued piece, in order. A bounded queue (QUEUE_DEPTH pieces)
    keeps memory flat whatever the size; after a failure it keeps draining, so the receiving side never
    blocks on it, and `put` hands the failure to the receiving thread."""

    def __init__(self, name: str, work: Callable[[memoryview], None]) -> None:
        self.work = work
        self.error: BaseException | None = None
        self.queue: queue.Queue[memoryview | None] = queue.Queue(maxsize=QUEUE_DEPTH)
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (piece := self.queue.get()) is not None:
            if self.error is not None:
                continue
            try:
                self.work(piece)
            except BaseException as exc:  # noqa: BLE001 - not swallowed: put() and _Pipeline.close() raise it
                self.error = exc

    def put(self, piece: memoryview) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(piece)

    def finish(self) -> None:
        self.queue.put(None)
        self.thread.join()


class _Pipeline:
    """Writes on one thread and hashes and checks the zip's members on another, so the disk, sha256 and
    CRC-32 (which all release the GIL) overlap with receiving and with each other. A third thread asks
    the disk to persist what is written every SYNC_EVERY bytes, so the final fsync has little left."""

    def __init__(self, out: BinaryIO, streamed: StreamCheck) -> None:
        self.out = out
        self.sha = hashlib.sha256()
        self.streamed = streamed
        self.sync_error: OSError | None = None
        self.unsynced = 0
        self.dirty = threading.Event()
        self.finished = False
        self.syncer = threading.Thread(target=self._sync, name="archive-syncer", daemon=True)
        self.syncer.start()
        self.writer = _Stage("archive-writer", self._write)
        self.checker = _Stage("archive-checker", self._check)

    def _write(self, piece: memoryview) -> None:
        self.out.write(piece)
        self.unsynced += len(piece)
        if self.unsynced >= SYNC_EVERY:
            self.out.flush()
            self.dirty.set()
            self.unsynced = 0

    def _check(self, piece: memoryview) -> None:
        self.sha.update(piece)
        self.streamed.feed(piece)

    def _sync(self) -> None:
        while True:
            self.dirty.wait()
            self.dirty.clear()
            if self.finished:
                return
            try:
                os.fdatasync(self.out.fileno())
            except OSError as exc:
                self.sync_error = exc
                return

    def put(self, piece: memoryview) -> None:
        """Hand one piece to both threads (blocks while either is full); raises a failure either had."""
        if self.sync_error is not None:
            raise self.sync_error
        self.writer.put(piece)
        self.checker.put(piece)

    def stop(self) -> None:
        """Let the threads end (after a failure elsewhere, or once everything is queued)."""
        self.writer.finish()
        self.checker.finish()
        self.finished = True
        self.dirty.set()
        self.syncer.join()

    def close(self) -> str:
        """Wait for every piece to be written and checked; the sha256 (raises a failure if there was one)."""
        self.stop()
        for error in (self.writer.error, self.sync_error, self.checker.error):
            if error is not None:
                raise error
        return self.sha.hexdigest()


def _receive(chunks: Iterable[bytes], out: BinaryIO, expected: int | None, progress: Progress | None,
             counter: list[int], streamed: StreamCheck) -> str:
    """Write `chunks` to `out` (at most CHUNK_SIZE at a time), hashing, counting and checking the zip's
    members as they pass; the sha256."""
    pipeline = _Pipeline(out, streamed)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            for start in range(0, len(view), CHUNK_SIZE):
                piece = view[start:start + CHUNK_SIZE]
                pipeline.put(piece)
                counter[0] += len(piece)
            if expected is not None and counter[0] > expected:
                raise ArchiveError(f"the manager sent more than the {expected} bytes it announced")
            if progress is not None:
                progress(counter[0], expected)
    except BaseException:
        pipeline.stop()  # the first failure is the one to report
        raise
    sha = pipeline.close()
    out.flush()
    os.fsync(out.fileno())
    if expected is not None and counter[0] != expected:
        raise ArchiveError(f"the download stopped after {_count(counter[0], expected)} (truncated)")
    return sha


# --- the archive ---------------------------------------------------------------------------------------


class Archive:
    """Common path of every archive: receive into a temp file, check, put in place, record."""

    kind = "archive"

    def __init__(self, store: Any, clock: Clock, staging: str) -> None:
        self.store = store
        self.clock = clock
        self.staging = staging

    # what a storage provides ---------------------------------------------------------------------
    def location(self, manager: str, snapshot_id: str) -> str:
        """Where the copy of (manager, snapshot) lives: a path or a URL."""
        raise NotImplementedError

    def _temp_dir(self, manager: str) -> str:
        """The folder for temporary files of `manager`'s downloads."""
        raise NotImplementedError

    def _place(self, temp: str, manager: str, snapshot_id: str, sha256: str) -> str:
        """Move a verified temp file to its final place; the location."""
        raise NotImplementedError

    def _remove(self, location: str) -> bool:
        """Remove a stored copy; False when it was not there."""
        raise NotImplementedError

    def _local_copy(self, copy: dict[str, Any]) -> Any:
        """A context manager giving a local file that holds the copy's bytes, for checking."""
        raise NotImplementedError

    def read(self, copy: dict[str, Any]) -> Iterator[bytes]:
        """The stored bytes of `copy`, in chunks of at most CHUNK_SIZE."""
        raise NotImplementedError

    def _open_temp(self, path: str) -> BinaryIO:
        """The temp file a download is written to (a seam: tests swap it for one whose disk is full)."""
        return open(path, "xb")  # noqa: SIM115 - closed by save()

    # the common path ------------------------------------------------------------------------------
    def save(self, manager: str, snapshot_id: str, download: Any, *, manager_version: str = "",
             tenant: str = "", created_at: str = "", progress: Progress | None = None) -> dict[str, Any]:
        """Stream `download` (a `Download`) into the archive, verify it, record it; the catalog row."""
        what = f"snapshot {snapshot_id} of {manager}"
        folder = self._temp_dir(manager)
        self._sweep(folder)
        temp = os.path.join(folder, f".{safe_name(snapshot_id)}.{secrets.token_hex(4)}.part")
        counter, streamed = [0], StreamCheck()
        try:
            with self._open_temp(temp) as out:
                sha = _receive(download.chunks, out, download.size, progress, counter, streamed)
            version, layout = check_zip(temp, streamed)
            location = self._place(temp, manager, snapshot_id, sha)
        except ManagerError as exc:  # the client's message says how far it got and why it stopped
            raise self._failed(what, str(exc)) from exc
        except ArchiveError as exc:
            raise self._failed(what, str(exc)) from None
        except OSError as exc:
            raise self._failed(what, self._os_problem(exc, folder, counter[0])) from exc
        finally:
            _unlink(temp)
        fields = dict(manager=manager, snapshot_id=snapshot_id, location=location, sha256=sha, size=counter[0],
                      manager_version=manager_version, snapshot_version=version, tenant=tenant,
                      created_at=_time_or(created_at, self.clock), verified=True, verified_at=self.clock.now(),
                      error="")
        try:
            row = self.store.record_copy(**fields)
        except BotError as exc:
            self._remove(location)
            raise ArchiveError(f"could not record the copy of {what} in the catalog, so it was removed: "
                               f"{exc}") from exc
        return {**row, "layout": layout}

    def _sweep(self, folder: str) -> None:
        """Remove temp files a killed bot left behind (old enough that no running download owns them)."""
        try:
            names = [n for n in os.listdir(folder) if n.startswith(".") and n.endswith(".part")]
        except OSError:
            return
        for name in names:
            path = os.path.join(folder, name)
            try:
                if os.path.getmtime(path) < self.clock.time() - STALE_PART:
                    os.unlink(path)
            except OSError:
                pass  # gone already, or not ours to remove: the next sweep tries again

    def _failed(self, what: str, reason: str) -> ArchiveError:
        return ArchiveError(f"copying {what} to the archive failed: {reason}. The partial file was removed "
                            "and the catalog is unchanged.")

    def _os_problem(self, exc: OSError, folder: str, received: int) -> str:
        if exc.errno == errno.ENOSPC:
            return f"the disk of {folder} is full (no space left after {received} bytes)"
        if exc.errno == errno.EDQUOT:
            return f"the disk quota of {folder} is exhausted after {received} bytes"
        return f"could not write to {folder}: {exc.strerror or exc}"

    def verify(self, copy: dict[str, Any]) -> dict[str, Any]:
        """Re-check a stored copy (sha256, size, zip, metadata) and record the verdict; the catalog row."""
        problem = ""
        try:
            with self._local_copy(copy) as path:
                checked = check_file(path)
        except ArchiveError as exc:
            problem = str(exc)
        except OSError as exc:
            problem = f"it cannot be read: {exc.strerror or exc}"
        else:
            if copy.get("size") and checked.size != copy["size"]:
                problem = f"it is {checked.size} bytes, but {copy['size']} were stored"
            elif copy.get("sha256") and checked.sha256 != copy["sha256"]:
                problem = "its sha256 differs from the one recorded when it was stored (the file changed)"
        return self.store.mark_verified(copy["manager"], copy["snapshot_id"], not problem, problem)

    def upload_copy(self, copy: dict[str, Any], manager: Any, snapshot_id: str,
                    tenant: str | None = None) -> dict[str, Any]:
        """Stream `copy` to `manager` (a Manager client) as `snapshot_id`, after re-checking it; the snapshot."""
        checked = self.verify(copy)
        if not checked.get("verified"):
            raise ArchiveError(f"the archive copy of {copy['snapshot_id']} of {copy['manager']} failed its check, so "
                               f"it was not uploaded: {checked.get('error')}")
        return manager.upload_snapshot(snapshot_id, chunks=self.read(checked), tenant=tenant)

    def delete(self, copy: dict[str, Any]) -> bool:
        """Remove a copy and forget it; False when there was no file (it is forgotten anyway)."""
        try:
            removed = self._remove(copy["location"])
        except OSError as exc:
            raise ArchiveError(f"could not delete the archive copy {copy['location']}: {exc.strerror or exc}") from exc
        self.store.delete_copy(copy["manager"], copy["snapshot_id"])
        return removed

    def find(self, snapshot_id: str, manager: str) -> dict[str, Any]:
        """The copy to use for `snapshot_id`: `manager`'s own, else the newest verified one of any manager."""
        own = self.store.get_copy(manager, snapshot_id)
        if own:
            return own
        others = [c for c in self.store.list_copies() if c["snapshot_id"] == snapshot_id]
        others.sort(key=lambda c: (bool(c.get("verified")), c.get("created_at") or ""), reverse=True)
        if not others:
            raise NotFound(f"the archive has no copy of snapshot {snapshot_id} (of any manager); "
                           "`snapshots list` shows which snapshots have one")
        return others[0]


class FolderArchive(Archive):
    """Copies in a local folder: `<root>/<manager>/<snapshot id>.zip`."""

    kind = "folder"

    def __init__(self, root: str, store: Any, clock: Clock) -> None:
        super().__init__(store, clock, root)
        self.root = os.path.abspath(root)

    def location(self, manager: str, snapshot_id: str) -> str:
        return os.path.join(self.root, safe_name(manager), safe_name(snapshot_id) + ".zip")

    def _temp_dir(self, manager: str) -> str:
        folder = os.path.join(self.root, safe_name(manager))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise ArchiveError(f"cannot create the archive folder {folder}: {exc.strerror or exc}") from exc
        return folder

    def _place(self, temp: str, manager: str, snapshot_id: str, sha256: str) -> str:
        final = self.location(manager, snapshot_id)
        os.replace(temp, final)  # atomic: readers see the old copy or the new one, never half of one
        _fsync_dir(os.path.dirname(final))
        return final

    def _remove(self, location: str) -> bool:
        try:
            os.unlink(location)
        except FileNotFoundError:
            return False
        return True

    @contextmanager
    def _local_copy(self, copy: dict[str, Any]) -> Iterator[str]:
        path = copy.get("location") or self.location(copy["manager"], copy["snapshot_id"])
        if not os.path.exists(path):
            raise ArchiveError(f"the file {path} is missing")
        yield path

    def read(self, copy: dict[str, Any]) -> Iterator[bytes]:
        path = copy.get("location") or self.location(copy["manager"], copy["snapshot_id"])
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by the generator below
        except OSError as exc:
            raise ArchiveError(f"cannot read the archive copy {path}: {exc.strerror or exc}") from exc
        return _chunks_of(fh)


def _time_or(text: str, clock: Clock) -> Any:
    """The snapshot's creation time as the manager wrote it, or now when it is missing or unreadable."""
    try:
        return datetime.fromisoformat(text) if text else clock.now()
    except ValueError:
        return clock.now()


def _chunks_of(fh: BinaryIO) -> Iterator[bytes]:
    with fh:
        while chunk := fh.read(CHUNK_SIZE):
            yield chunk


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(folder: str) -> None:
    """Make a rename durable (best effort: some file systems cannot fsync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def open_archive(settings: Any, store: Any, clock: Clock) -> Archive:
    """The archive the settings describe: S3 when `archive_url` is s3://…, else the folder `archive_dir`."""
    url = getattr(settings, "archive_url", "") or ""
    if url.startswith("s3://"):
        try:
            from bot.archive_s3 import S3Archive
        except ImportError as exc:
            raise ArchiveError(f"BOT_ARCHIVE_URL={url} needs boto3: pip install 'cfy-bot[s3]' ({exc})") from None
        return S3Archive(url, store, clock, staging=settings.archive_dir)
    return FolderArchive(settings.archive_dir, store, clock)
