"""Receiving a download into a file: written, hashed and its zip members checked on threads of their own.

The receiving thread fills fixed buffers (BUFFERS of CHUNK_SIZE, allocated once) straight from the socket
when the client offers `Download.readinto`, and hands each full one on: one thread hashes it and follows the
zip's members (`bot.archive.zipstream`), the next writes it, and the buffer comes back to be filled again. So
the network, sha256 and CRC-32 (which release the GIL) and the disk overlap, nothing is copied in Python, and
memory stays flat whatever the size. The file is on disk (fsync) before `receive` returns.

Where the file system allows it, the temp file is written with O_DIRECT (`open_temp`): the disk takes the
bytes straight from the buffers, so the kernel neither copies each byte into the page cache (a write-once
archive gains nothing from being cached) nor has a whole archive left to flush at the fsync. The buffers are
page-aligned (mmap) and every piece but the last is a whole number of blocks; the last one is written
through the page cache (O_DIRECT off), and the fsync makes everything durable as before.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import mmap
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from bot.errors import ArchiveError
from bot.archive.zipstream import StreamCheck

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

CHUNK_SIZE = 1 << 20  # every read and write is at most this big: memory stays flat whatever the size
BUFFERS = 8  # buffers of CHUNK_SIZE in flight between receiving, checking and writing: 8 MiB in all
SYNC_EVERY = 32 << 20  # through the page cache: persist every 32 MiB, so the disk works during the download
ALIGN = 4096  # O_DIRECT: a piece written around the page cache is a whole number of these (any disk's block)
O_DIRECT: int = getattr(os, "O_DIRECT", 0)  # Linux; elsewhere every file goes through the page cache

Progress = Callable[[int, int | None], None]  # (bytes so far, expected total or None)
ReadInto = Callable[[memoryview], int]  # fills the start of a buffer; how many bytes (0 at the end)


def _count(n: int, total: int | None = None) -> str:
    return f"{n} of {total} bytes" if total is not None else f"{n} bytes"


def read_into(chunks: Iterable[bytes]) -> ReadInto:
    """A `ReadInto` over chunks of bytes (a client without a direct reader, a file): each byte copied once."""
    source = iter(chunks)
    left = memoryview(b"")

    def readinto(buffer: memoryview) -> int:
        nonlocal left
        while not left:
            chunk = next(source, None)
            if chunk is None:
                return 0
            left = memoryview(chunk)
        n = min(len(buffer), len(left))
        buffer[:n] = left[:n]
        left = left[n:]
        return n

    return readinto


class TempFile(io.FileIO):
    """A new, unbuffered file for a download, written around the page cache (O_DIRECT) where its file system
    allows and while the writes allow: a write that is not whole blocks (the last one), or that the file
    system refuses (EINVAL), turns O_DIRECT off and goes through the page cache, as any file's would."""

    def __init__(self, path: str) -> None:
        super().__init__(path, "xb")  # fails if it exists
        self.direct = False
        if O_DIRECT:
            try:
                fcntl.fcntl(self.fileno(), fcntl.F_SETFL, fcntl.fcntl(self.fileno(), fcntl.F_GETFL) | O_DIRECT)
                self.direct = True
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # EINVAL: this file system has no O_DIRECT
                    self.close()
                    raise

    def write(self, data: ReadableBuffer, /) -> int:
        if self.direct and memoryview(data).nbytes % ALIGN:
            self.cached()
        try:
            return super().write(data)
        except OSError as exc:
            if not (self.direct and exc.errno == errno.EINVAL):
                raise
        self.cached()  # refused as a direct write (alignment this file system wants): through the cache
        return super().write(data)

    def cached(self) -> None:
        """Turn O_DIRECT off: the rest of the file goes through the page cache."""
        fcntl.fcntl(self.fileno(), fcntl.F_SETFL, fcntl.fcntl(self.fileno(), fcntl.F_GETFL) & ~O_DIRECT)
        self.direct = False


def _write_all(out: BinaryIO, data: memoryview) -> None:
    """`out.write` until all of `data` is written (an unbuffered file may write part of it)."""
    while data:
        data = data[out.write(data):]


def _fill(readinto: ReadInto, buffer: mmap.mmap, arrived: Callable[[int], None]) -> int:
    """Fill `buffer` as far as the download goes, telling `arrived` each read's size; how many bytes (less than
    its size only at the end)."""
    view = memoryview(buffer)
    filled = 0
    while filled < len(buffer):
        n = readinto(view[filled:])
        if n == 0:
            break
        filled += n
        arrived(n)
    return filled


Piece = tuple[mmap.mmap, int]  # a buffer and how many of its bytes hold data


class _Stage:
    """One thread that does `work` to every queued piece, in order, then passes the piece on (`then`). After a
    failure it keeps passing pieces on without working on them, so the buffers keep coming back and the
    receiving thread never waits for ever; `_Pipeline` raises the failure."""

    def __init__(self, name: str, work: Callable[[memoryview], None], then: Callable[[Piece], None]) -> None:
        self.work, self.then = work, then
        self.error: BaseException | None = None
        self.queue: queue.SimpleQueue[Piece | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (piece := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.work(memoryview(piece[0])[:piece[1]])
                except BaseException as exc:  # noqa: BLE001 - not swallowed: _Pipeline raises it
                    self.error = exc
            self.then(piece)

    def finish(self) -> None:
        self.queue.put(None)
        self.thread.join()


class _Pipeline:
    """Receiving thread -> checking thread (sha256, the zip's members) -> writing thread -> back to be filled.

    Every piece goes through both threads in order, each on a different buffer at a time, so checking,
    writing and receiving overlap. A third thread asks the disk to persist what is written every
    SYNC_EVERY bytes, so the final fsync has little left."""

    def __init__(self, out: BinaryIO, streamed: StreamCheck) -> None:
        self.out = out
        self.sha = hashlib.sha256()
        self.streamed = streamed
        self.sync_error: OSError | None = None
        self.unsynced = 0
        self.dirty = threading.Event()
        self.finished = False
        self.direct = isinstance(out, TempFile) and out.direct  # around the page cache: nothing to persist on the way
        self.free: queue.SimpleQueue[mmap.mmap] = queue.SimpleQueue()
        for _ in range(BUFFERS):
            self.free.put(mmap.mmap(-1, CHUNK_SIZE))  # page-aligned, as O_DIRECT needs
        self.syncer = threading.Thread(target=self._sync, name="archive-syncer", daemon=True)
        self.syncer.start()
        self.writer = _Stage("archive-writer", self._write, lambda piece: self.free.put(piece[0]))
        self.checker = _Stage("archive-checker", self._check, self.writer.queue.put)

    def _check(self, piece: memoryview) -> None:
        self.sha.update(piece)
        self.streamed.feed(piece)

    def _write(self, piece: memoryview) -> None:
        _write_all(self.out, piece)
        self.unsynced += len(piece)
        if not self.direct and self.unsynced >= SYNC_EVERY:
            self.out.flush()
            self.dirty.set()
            self.unsynced = 0

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

    def _raise_failure(self) -> None:
        for error in (self.writer.error, self.sync_error, self.checker.error):
            if error is not None:
                raise error

    def take(self) -> mmap.mmap:
        """A buffer to fill (waits for one to come back); raises a failure either thread had."""
        buffer = self.free.get()
        self._raise_failure()
        return buffer

    def put(self, buffer: mmap.mmap, n: int) -> None:
        """Hand the first `n` bytes of `buffer` on, to be checked, then written."""
        self.checker.queue.put((buffer, n))

    def stop(self) -> None:
        """Let the threads end (after a failure elsewhere, or once everything is queued)."""
        self.checker.finish()
        self.writer.finish()
        self.finished = True
        self.dirty.set()
        self.syncer.join()

    def close(self) -> str:
        """Wait for every piece to be checked and written; the sha256 (raises a failure if there was one)."""
        self.stop()
        self._raise_failure()
        return self.sha.hexdigest()


def receive(readinto: ReadInto, out: BinaryIO, expected: int | None, progress: Progress | None,
            counter: list[int], streamed: StreamCheck) -> str:
    """Write the download `readinto` reads to `out` (at most CHUNK_SIZE at a time), hashing, counting and
    checking the zip's members as they pass; the sha256."""
    pipeline = _Pipeline(out, streamed)

    def arrived(n: int) -> None:  # after every read, so a slow link still reports (and can be cancelled) often
        counter[0] += n
        if expected is not None and counter[0] > expected:
            raise ArchiveError(f"the manager sent more than the {expected} bytes it announced")
        if progress is not None:
            progress(counter[0], expected)

    try:
        while True:
            buffer = pipeline.take()
            n = _fill(readinto, buffer, arrived)
            if n == 0:
                break
            pipeline.put(buffer, n)
            if n < len(buffer):
                break
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
