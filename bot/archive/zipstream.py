"""Check a zip's members while its bytes stream past, so a download needs no second pass to read them.

A zip written to a seekable file (as a manager writes its snapshots) puts each member's CRC-32 and sizes in
the local header in front of its data. `StreamCheck` is fed the bytes in order, parses each local header,
runs the member's data through CRC-32 (inflating deflated members, in bounded pieces) and records what it
found by header offset. Afterwards `zipfile` reads only the central directory, and a member counts as
checked only when the central directory agrees with what streamed past (same offset, name, CRC and
sizes); `check_members` reads every other member the ordinary way. So anything the stream cannot follow
(data descriptors, encryption, other compression, bytes before the first header, a damaged header) costs
speed, never a check: those members are read again.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass

try:  # zlib-ng's CRC-32 uses the CPU's carry-less multiply: about 4x zlib's speed, the same values
    from zlib_ng.zlib_ng import crc32
except ImportError:
    from zlib import crc32

LOCAL = b"PK\x03\x04"
CENTRAL = (b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06")  # where the members end
LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # signature … name length, extra length: 30 bytes
ZIP64_EXTRA = 0x0001
INFLATE_STEP = 1 << 20  # inflate at most this much at a time: memory stays flat for any member
STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED


@dataclass(frozen=True)
class Seen:
    """One member as it streamed past: its local header's claims and the CRC and size of what followed."""

    name: str
    crc: int  # the CRC-32 computed over the member's (inflated) data
    compress_size: int
    file_size: int  # the inflated size counted


class StreamCheck:
    """Feed it the zip's bytes in order (`feed`); `seen` maps header offsets to the members it checked."""

    def __init__(self, keep: str = "", keep_max: int = 1 << 20) -> None:
        self.seen: dict[int, Seen] = {}
        self.kept: bytes | None = None  # the inflated data of the member named `keep`, once it streamed past whole
        self._keep, self._keep_max = keep, keep_max
        self.stopped = ""  # why it stopped following the stream ("" while it follows, "end" at the end)
        self._buf = bytearray()  # header bytes not parsed yet
        self._pos = 0  # offset in the zip of the next byte fed
        self._header_at = 0  # offset of the local header being collected
        self._member: _Member | None = None

    def feed(self, data: bytes | memoryview) -> None:
        """Take the next bytes of the zip."""
        view = memoryview(data)
        while view and not self.stopped:
            if self._member is not None:
                used = self._member.take(view)
                view = view[used:]
                self._pos += used
                if self._member.left == 0:
                    self._finish(self._member)
                continue
            used = self._header(view)
            view = view[used:]
            self._pos += used

    def _header(self, view: memoryview) -> int:
        """Collect and parse one local header; how many bytes of `view` it used."""
        if not self._buf:
            self._header_at = self._pos
        fixed = LOCAL_HEADER.size
        take = max(0, min(len(view), fixed - len(self._buf)))
        self._buf += view[:take]
        signature = bytes(self._buf[:4])
        if len(signature) == 4 and signature != LOCAL:
            self.stopped = "end" if signature in CENTRAL else "no local header where a member should start"
            return take
        if len(self._buf) < fixed:
            return take
        name_len, extra_len = struct.unpack_from("<HH", self._buf, 26)
        need: int = fixed + name_len + extra_len
        more = min(len(view) - take, need - len(self._buf))
        self._buf += view[take:take + more]
        if len(self._buf) < need:
            return take + more
        self._start(bytes(self._buf))
        self._buf.clear()
        return take + more

    def _start(self, header: bytes) -> None:
        (_sig, _version, flags, method, _time, _date, crc, csize, usize, name_len, extra_len) = \
            LOCAL_HEADER.unpack_from(header)  # the header's CRC is not trusted: the central directory's is compared
        if flags & 0x1:
            self.stopped = "an encrypted member"
            return
        if flags & 0x8:
            self.stopped = "a member with a data descriptor (sizes after the data)"
            return
        if method not in (STORED, DEFLATED):
            self.stopped = f"a member compressed with method {method}"
            return
        raw_name = header[LOCAL_HEADER.size:LOCAL_HEADER.size + name_len]
        extra = header[LOCAL_HEADER.size + name_len:LOCAL_HEADER.size + name_len + extra_len]
        if csize == 0xFFFFFFFF or usize == 0xFFFFFFFF:
            sizes = _zip64_sizes(extra, usize, csize)
            if sizes is None:
                self.stopped = "a zip64 member without its sizes"
                return
            usize, csize = sizes
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
        self._member = _Member(self._header_at, name, method, csize, usize)
        if self._keep and name == self._keep and usize <= self._keep_max:
            self._member.data, self._member.header_crc = bytearray(), crc
        if csize == 0:
            self._finish(self._member)

    def _finish(self, member: _Member) -> None:
        self._member = None
        if member.method == DEFLATED and not member.ended():
            return  # the deflate stream did not end with the member: not recorded, so it is read again
        self.seen[member.offset] = Seen(member.name, member.crc, member.compress_size, member.size)
        if member.data is not None and member.crc == member.header_crc and member.size == member.file_size:
            self.kept = bytes(member.data)  # whole, and its CRC-32 is the one its header declares


class _Member:
    """The data of one member as it streams: CRC-32 and size of what it holds."""

    def __init__(self, offset: int, name: str, method: int, compress_size: int, file_size: int) -> None:
        self.offset, self.name, self.method = offset, name, method
        self.compress_size, self.file_size = compress_size, file_size
        self.left = compress_size
        self.crc = 0
        self.size = 0
        self._inflate = zlib.decompressobj(-15) if method == DEFLATED else None
        self._broken = False
        self.data: bytearray | None = None  # kept data (StreamCheck's `keep` member only)
        self.header_crc = 0

    def take(self, view: memoryview) -> int:
        piece = view[:self.left]
        self.left -= len(piece)
        if self._inflate is None:
            self._count(piece)
        elif not self._broken:
            try:
                out = self._inflate.decompress(piece, INFLATE_STEP)
                self._count(out)
                while self._inflate.unconsumed_tail and self.size <= self.file_size:
                    self._count(self._inflate.decompress(self._inflate.unconsumed_tail, INFLATE_STEP))
            except zlib.error:
                self._broken = True  # not recorded: the full read reports the damage in its own words
            if self.size > self.file_size:
                self._broken = True  # inflates past its declared size: stop spending CPU on it; read again
        return len(piece)

    def _count(self, data: bytes | memoryview) -> None:
        self.crc = crc32(data, self.crc)
        self.size += len(data)
        if self.data is not None and self.size <= self.file_size:
            self.data += data

    def ended(self) -> bool:
        assert self._inflate is not None
        return not self._broken and self._inflate.eof and not self._inflate.unused_data


def _zip64_sizes(extra: bytes, usize: int, csize: int) -> tuple[int, int] | None:
    """(file size, compressed size) from a local header's zip64 extra field, for the ones marked 0xFFFFFFFF."""
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, at)
        body = extra[at + 4:at + 4 + length]
        if kind == ZIP64_EXTRA:
            values = [v for (v,) in struct.iter_unpack("<Q", body[:len(body) // 8 * 8])]
            if usize == 0xFFFFFFFF:
                if not values:
                    return None
                usize = values.pop(0)
            if csize == 0xFFFFFFFF:
                if not values:
                    return None
                csize = values.pop(0)
            return usize, csize
        at += 4 + length
    return None


def agrees(info: zipfile.ZipInfo, seen: Seen | None) -> bool:
    """Whether the central directory's entry matches a member checked in the stream."""
    return (seen is not None and seen.name == info.orig_filename and seen.crc == info.CRC
            and seen.compress_size == info.compress_size and seen.file_size == info.file_size)


def check_members(zf: zipfile.ZipFile, streamed: StreamCheck | None, chunk: int) -> int:
    """Read to its end every member the stream did not check (zipfile checks each CRC-32 there, raising
    BadZipFile when it is wrong); how many members were read."""
    seen = streamed.seen if streamed is not None else {}
    read = 0
    for info in zf.infolist():
        if info.is_dir() or agrees(info, seen.get(info.header_offset)):
            continue
        with zf.open(info) as member:
            while member.read(chunk):
                pass
        read += 1
    return read
