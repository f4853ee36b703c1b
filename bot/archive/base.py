"""The common path of every archive (folder or S3): streamed, verified copies, known to the catalog.

A download is written in fixed-size chunks to a temporary file beside its final place (never the whole
archive in memory), counted against Content-Length, hashed and its members' CRCs checked while it streams
(`bot.archive.zipstream`); then it must be a zip whose central directory agrees with those members (any member the
stream could not follow is read back and checked) and whose `metadata.json` names a `snapshot_version`. Only
then is it renamed into place and recorded in the catalog as verified. Anything else removes the partial
file, leaves the catalog as it was, and raises ArchiveError saying what happened.

A verified copy is never replaced by one with other content (the id was re-used on the manager: deleted there
and created again, or brought back by a restore): that raises CopyKept and keeps the old copy and its row. The
same content (same sha256) is the same copy and is simply recorded again; a kept copy that no longer passes its
check (missing or changed file) is replaced by the new, verified one.

Order of the last two steps: the copy is put in place first and recorded second, so the catalog never
names a copy that is not there (a crash in between leaves an unrecorded file, which the next download of
the same snapshot replaces).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import secrets
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote

from bot.archive.verify import HEAD_LIMIT, check_file, check_zip, head_format, read_format
from bot.archive.receive import CHUNK_SIZE, Progress, TempFile, read_into, receive, unlink
from bot.clock import Clock
from bot.core import ArchiveCopy, Download, size_problem
from bot.errors import ArchiveError, BotError, CopyKept, ManagerError, NotFound
from bot.archive.zipstream import StreamCheck

if TYPE_CHECKING:
    from bot.engine.context import ManagerAPI
    from bot.store import Store

__all__ = ["CHUNK_SIZE", "STALE_PART", "Archive", "Progress", "safe_name"]

log = logging.getLogger("cfy_bot.archive")

STALE_PART = 24 * 3600.0  # a temp file untouched this long belongs to no running download
# File names are at most 255 bytes on common file systems; a snapshot id may be 256 characters (and quoting
# makes each unusual character three). Names that would reach this length are cut and end in a hash of the
# whole id instead (the catalog keeps the real id beside the file's location).
MAX_NAME = 180
_TEMP_PREFIX = 60  # the part of the name a temp file shows, before its owner


def safe_name(text: str) -> str:
    """A file or folder name for a manager name or snapshot id (never a path, never `.` or `..`).

    Shorter than MAX_NAME: the id, %-quoted. Otherwise exactly MAX_NAME: its start, `~` and 16 hex digits of
    its sha256, so two long ids never share a file and a short id never looks like a cut one.
    """
    name = quote(text, safe="-_.~", errors="surrogatepass")
    if name in ("", ".", ".."):
        raise ArchiveError(f"{text!r} cannot be used as a name in the archive")
    if len(name) >= MAX_NAME:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        name = f"{name[:MAX_NAME - 17]}~{digest}"
    return name


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:8]


def temp_name(snapshot_id: str) -> str:
    """`.<id start>.<host tag>-<pid>-<random>.part`: a partial download, named by the process that owns it."""
    return f".{safe_name(snapshot_id)[:_TEMP_PREFIX]}.{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}.part"


def part_owner_gone(name: str) -> bool:
    """True when the partial file `name` was written by a process of this host that no longer runs."""
    if not (name.startswith(".") and name.endswith(".part")):
        return False
    host, _, rest = name[:-len(".part")].rpartition(".")[2].partition("-")
    pid = rest.partition("-")[0]
    if host != _host_tag() or not pid.isascii() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def discard(path: str) -> None:
    """Remove a temp file after a failure; a problem doing so is logged, never raised over the first error."""
    try:
        unlink(path)
    except OSError as exc:
        log.warning("could not remove the partial file %s: %s", path, exc.strerror or exc)


# --- the archive ---------------------------------------------------------------------------------------


class Archive:
    """Common path of every archive: receive into a temp file, check, put in place, record."""

    kind = "archive"

    def __init__(self, store: Store, clock: Clock, staging: str) -> None:
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

    def _local_copy(self, copy: ArchiveCopy) -> Any:
        """A context manager giving a local file that holds the copy's bytes, for checking."""
        raise NotImplementedError

    def read(self, copy: ArchiveCopy) -> Iterator[bytes]:
        """The stored bytes of `copy`, in chunks of at most CHUNK_SIZE."""
        raise NotImplementedError

    def local_copy(self, copy: ArchiveCopy) -> Any:
        """A context manager giving a local file with the copy's bytes (a restore drill reads its entities)."""
        return self._local_copy(copy)

    def _open_temp(self, path: str) -> BinaryIO:
        """The temp file a download is written to (a seam: tests swap it for one whose disk is full)."""
        return TempFile(path)

    # the common path ------------------------------------------------------------------------------
    def save(self, manager: str, snapshot_id: str, download: Download, *, manager_version: str = "",
             tenant: str = "", created_at: str = "", progress: Progress | None = None) -> ArchiveCopy:
        """Stream `download` (a `Download`) into the archive, verify it, record it; the catalog row."""
        what = f"snapshot {snapshot_id} of {manager}"
        folder = self._temp_dir(manager)
        self._sweep(folder)
        temp = os.path.join(folder, temp_name(snapshot_id))
        counter, streamed = [0], StreamCheck()
        try:
            with self._open_temp(temp) as out:
                readinto = download.readinto or read_into(download.chunks)
                sha = receive(readinto, out, download.size, progress, counter, streamed)
            version, layout = check_zip(temp, streamed)
            self._keep_other_copy(manager, snapshot_id, sha)
            location = self._place(temp, manager, snapshot_id, sha)
        except CopyKept:
            raise
        except ManagerError as exc:  # the client's message says how far it got and why it stopped
            raise self._failed(what, str(exc)) from exc
        except ArchiveError as exc:
            raise self._failed(what, str(exc)) from None
        except OSError as exc:
            raise self._failed(what, self._os_problem(exc, folder, counter[0])) from exc
        finally:
            discard(temp)  # gone already after _place; a cleanup error never hides the first one
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
        return replace(row, layout=layout)

    def _keep_other_copy(self, manager: str, snapshot_id: str, sha: str) -> None:
        """CopyKept when the archive keeps a copy of (manager, snapshot_id) with other content that still passes
        its check: a verified copy is never overwritten. Same content, or a kept copy that fails its check now
        (missing, changed), is replaced."""
        kept = self.store.get_copy(manager, snapshot_id)
        if kept is None or not kept.sha256 or kept.sha256 == sha or not kept.verified:
            return
        if not self.verify(kept).verified:
            log.warning("the kept copy %s of %s no longer passes its check; a new verified copy replaces it",
                        kept.location, snapshot_id)
            return
        taken = f"{str(kept.created_at)[:16].replace('T', ' ')} UTC" if kept.created_at else "at an unknown time"
        raise CopyKept(f"the archive already keeps a verified copy of snapshot {snapshot_id} of {manager} with "
                       f"other content ({kept.location}, taken {taken}, sha256 {kept.sha256[:12]}…; this "
                       f"download's sha256 is {sha[:12]}…). A verified copy is never replaced: it was kept, and "
                       "the new download was removed")

    def _sweep(self, folder: str) -> int:
        """Remove temp files a killed bot left behind: at once when their owner (a process of this host) is
        gone, else when old enough that no running download owns them. Returns how many were removed."""
        try:
            names = [n for n in os.listdir(folder) if n.startswith(".") and n.endswith(".part")]
        except OSError:
            return 0
        removed = 0
        for name in names:
            path = os.path.join(folder, name)
            try:
                if part_owner_gone(name) or os.path.getmtime(path) < self.clock.time() - STALE_PART:
                    os.unlink(path)
                    removed += 1
            except OSError:
                pass  # gone already, or not ours to remove: the next sweep tries again
        return removed

    def sweep_partials(self) -> int:
        """At start-up: remove the partial files of downloads whose process is gone, in every temp folder."""
        root = getattr(self, "root", "") or self.staging
        folders = [self.staging] if self.staging and os.path.isdir(self.staging) else []
        try:
            folders += [e.path for e in os.scandir(root) if e.is_dir(follow_symlinks=False)] if root else []
        except OSError:
            pass
        return sum(self._sweep(f) for f in dict.fromkeys(folders))

    def _failed(self, what: str, reason: str) -> ArchiveError:
        return ArchiveError(f"copying {what} to the archive failed: {reason}. The partial file was removed "
                            "and the catalog is unchanged.")

    def _os_problem(self, exc: OSError, folder: str, received: int) -> str:
        if exc.errno == errno.ENOSPC:
            return f"the disk of {folder} is full (no space left after {received} bytes)"
        if exc.errno == errno.EDQUOT:
            return f"the disk quota of {folder} is exhausted after {received} bytes"
        return f"could not write to {folder}: {exc.strerror or exc}"

    def _stored_size(self, location: str) -> int | None:
        """The size of the stored file at `location` (read without reading the file); None when it is missing."""
        raise NotImplementedError

    def stored_size(self, copy: ArchiveCopy) -> int | None:
        """The size of the copy's file as it is now (not the catalog's); None when it is missing."""
        return self._stored_size(copy.location or self.location(copy.manager, copy.snapshot_id))

    def verify(self, copy: ArchiveCopy) -> ArchiveCopy:
        """Re-check a stored copy (size first, then sha256, zip, metadata) and record the verdict; the catalog
        row. A file whose size is not the recorded one is named so (truncated), before any byte is read."""
        try:
            actual = self.stored_size(copy)
        except ArchiveError:
            actual = None  # the whole check below says what is wrong
        if actual is not None and copy.size and actual != copy.size:
            return self.store.mark_verified(copy.manager, copy.snapshot_id, False, size_problem(actual, copy.size))
        problem = ""
        try:
            with self._local_copy(copy) as path:
                checked = check_file(path)
        except ArchiveError as exc:
            problem = str(exc)
        except OSError as exc:
            problem = f"it cannot be read: {exc.strerror or exc}"
        else:
            if copy.size and checked.size != copy.size:
                problem = size_problem(checked.size, copy.size)
            elif copy.sha256 and checked.sha256 != copy.sha256:
                problem = "its sha256 differs from the one recorded when it was stored (the file changed)"
        return self.store.mark_verified(copy.manager, copy.snapshot_id, not problem, problem)

    def snapshot_format(self, copy: ArchiveCopy) -> tuple[str, str]:
        """The copy's (snapshot_version, layout) from its metadata.json: `legacy` or `new` (reference §9)."""
        try:
            with self._local_copy(copy) as path:
                return read_format(path)
        except OSError as exc:
            raise ArchiveError(f"the archive copy of {copy.snapshot_id} cannot be read: "
                               f"{exc.strerror or exc}") from None

    def manager_snapshot_format(self, manager: ManagerAPI, snapshot_id: str,
                                limit: int = HEAD_LIMIT) -> tuple[str, str, int]:
        """(snapshot_version, layout, bytes read) of the manager's own copy of `snapshot_id`, from the
        metadata.json in its first `limit` bytes: the download stops there (never the whole archive).
        ArchiveError saying why when it cannot tell."""
        try:
            with manager.download_snapshot(snapshot_id) as download:
                return head_format(download.chunks, limit)
        except ManagerError as exc:
            raise ArchiveError(f"the manager's copy could not be read ({exc})") from None
        except ArchiveError as exc:
            raise ArchiveError(f"the manager's copy: {exc}") from None

    def upload_copy(self, copy: ArchiveCopy, manager: ManagerAPI, snapshot_id: str,
                    tenant: str | None = None, progress: Progress | None = None) -> dict[str, Any]:
        """Stream `copy` to `manager` (a Manager client) as `snapshot_id`, after re-checking it; the snapshot."""
        checked = self.verify(copy)
        if not checked.verified:
            raise ArchiveError(f"the archive copy of {copy.snapshot_id} of {copy.manager} failed its check, so "
                               f"it was not uploaded: {checked.error}")
        chunks = self.read(checked)
        if progress is not None:
            chunks = _counted(chunks, checked.size or None, progress)
        return manager.upload_snapshot(snapshot_id, chunks=chunks, tenant=tenant)

    def delete(self, copy: ArchiveCopy) -> bool:
        """Remove a copy and forget it; False when there was no file (it is forgotten anyway)."""
        try:
            removed = self._remove(copy.location)
        except OSError as exc:
            raise ArchiveError(f"could not delete the archive copy {copy.location}: {exc.strerror or exc}") from exc
        self.store.delete_copy(copy.manager, copy.snapshot_id)
        return removed

    def find(self, snapshot_id: str, manager: str) -> ArchiveCopy:
        """The copy to use for `snapshot_id`: `manager`'s own, else the newest verified one of any manager."""
        own = self.store.get_copy(manager, snapshot_id)
        if own:
            return own
        others = [c for c in self.store.list_copies() if c.snapshot_id == snapshot_id]
        others.sort(key=lambda c: (c.verified, c.created_at), reverse=True)
        if not others:
            raise NotFound(f"the archive has no copy of snapshot {snapshot_id} (of any manager); "
                           f"`snapshots list -m {manager}` shows which snapshots have one")
        return others[0]


def _counted(chunks: Iterator[bytes], total: int | None, progress: Progress) -> Iterator[bytes]:
    """The same chunks, reporting the bytes sent so far after each."""
    done = 0
    for chunk in chunks:
        yield chunk
        done += len(chunk)
        progress(done, total)


def _time_or(text: str, clock: Clock) -> Any:
    """The snapshot's creation time as the manager wrote it, or now when it is missing or unreadable."""
    try:
        return datetime.fromisoformat(text) if text else clock.now()
    except ValueError:
        return clock.now()
