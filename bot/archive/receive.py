"""Receiving a download into a file: written, hashed and its zip members checked on threads of their own.

The receiving thread only hands each piece on: one thread writes it and another hashes it and follows the
zip's members (`bot.archive.zipstream`), so the disk, sha256 and CRC-32 (which all release the GIL) overlap with
receiving and with each other. Every piece is at most CHUNK_SIZE and each queue holds QUEUE_DEPTH of them,
so memory stays flat whatever the size. The file is on disk (fsync) before `receive` returns.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from bot.errors import ArchiveError
from bot.archive.zipstream import StreamCheck

CHUNK_SIZE = 1 << 20  # every read and write is at most this big: memory stays flat whatever the size
QUEUE_DEPTH = 4  # pieces queued for each thread: at most 4 MiB in flight
SYNC_EVERY = 32 << 20  # start persisting every 32 MiB, so the disk works while the download goes on

Progress = Callable[[int, int | None], None]  # (bytes so far, expected total or None)


def _count(n: int, total: int | None = None) -> str:
    return f"{n} of {total} bytes" if total is not None else f"{n} bytes"


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


def receive(chunks: Iterable[bytes], out: BinaryIO, expected: int | None, progress: Progress | None,
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


def chunks_of(fh: BinaryIO) -> Iterator[bytes]:
    """The bytes of an open file in chunks of at most CHUNK_SIZE; closes it at the end."""
    with fh:
        while chunk := fh.read(CHUNK_SIZE):
            yield chunk


def unlink(path: str) -> None:
    """Remove a file that may already be gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def fsync_dir(folder: str) -> None:
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
