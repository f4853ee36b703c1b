"""Checking a zip's members while it streams: what the stream checked is never read again, and anything it
could not follow (or that disagrees with the central directory) is read the ordinary way."""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.archive.folder import check_file, check_zip
from bot.errors import ArchiveError
from bot.archive.zipstream import StreamCheck, agrees, check_members


def make_zip(seekable: bool = True, **members: tuple[bytes, int]) -> bytes:
    """A zip of `name=(data, method)` members; unseekable output gives members with data descriptors."""
    buf = io.BytesIO()
    target = buf if seekable else Unseekable(buf)
    with zipfile.ZipFile(target, "w") as zf:
        zf.writestr("metadata.json", '{"snapshot_version": "7.0.5"}')
        for name, (data, method) in members.items():
            zf.writestr(name.replace("__", "/"), data, compress_type=method)
    return buf.getvalue()


class Unseekable(io.RawIOBase):
    """A write-only stream without tell/seek, as a pipe: zipfile then writes data descriptors."""

    def __init__(self, buf: io.BytesIO) -> None:
        self.buf = buf

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        return self.buf.write(b)


def streamed(data: bytes, step: int = 64 * 1024) -> StreamCheck:
    check = StreamCheck()
    for i in range(0, len(data), step):
        check.feed(data[i:i + step])
    return check


def reread(data: bytes, check: StreamCheck) -> int:
    """How many members the after-check reads again (0: the stream checked them all)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return check_members(zf, check, 1 << 20)


STORED, DEFLATED, BZIP2 = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2
PAYLOAD = os.urandom(300_000)


@pytest.mark.parametrize("step", [1, 3, 29, 30, 31, 4096, 1 << 20])
def test_every_member_is_checked_in_the_stream_whatever_the_piece_size(step) -> None:
    data = make_zip(big__bin=(PAYLOAD, STORED), text__txt=(b"abc" * 50_000, DEFLATED), empty=(b"", DEFLATED),
                    none=(b"", STORED))
    check = streamed(data, step)
    assert check.stopped == "end"
    assert len(check.seen) == 5
    assert reread(data, check) == 0


def test_zip64_members_are_followed() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("metadata.json", '{"snapshot_version": "7.0.5"}')
        with zf.open(zipfile.ZipInfo("big.bin"), "w", force_zip64=True) as member:
            member.write(PAYLOAD)
    data = buf.getvalue()
    check = streamed(data)
    assert reread(data, check) == 0


def test_data_descriptors_stop_the_stream_and_the_members_are_read_again() -> None:
    data = make_zip(seekable=False, big__bin=(PAYLOAD, STORED))
    check = streamed(data)
    assert "data descriptor" in check.stopped
    assert reread(data, check) == 2  # both members, read and found good


def test_other_compression_is_read_again() -> None:
    data = make_zip(a=(b"x" * 1000, BZIP2), b=(PAYLOAD, STORED))
    check = streamed(data)
    assert "method 12" in check.stopped
    assert reread(data, check) == 2  # a and b; metadata.json came before and was checked


def test_bytes_before_the_first_member_are_read_again() -> None:
    data = b"#!/bin/sh\n" + make_zip(b=(PAYLOAD, STORED))
    check = streamed(data)
    assert "no local header" in check.stopped
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert check_members(zf, check, 1 << 20) == 2


@pytest.mark.parametrize("method", [STORED, DEFLATED])
def test_a_damaged_member_is_not_counted_and_the_reread_fails(method) -> None:
    data = bytearray(make_zip(blob=(PAYLOAD, method)))
    at = len(data) // 2
    data[at] ^= 0xFF
    check = streamed(bytes(data))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        blob = zf.getinfo("blob")
        assert not agrees(blob, check.seen.get(blob.header_offset))  # what streamed past is not what was zipped
        assert agrees(zf.getinfo("metadata.json"), check.seen.get(0))
        with pytest.raises((zipfile.BadZipFile, zlib.error)):
            check_members(zf, check, 1 << 20)


def test_a_member_that_inflates_past_its_declared_size_is_not_counted() -> None:
    """A header that understates the size (a bomb, or damage) stops the inflating; the member is read again."""
    data = bytearray(make_zip(zeros=(bytes(5_000_000), DEFLATED)))
    at = bytes(data).index(b"PK\x03\x04", 1)  # the second local header: zeros
    struct.pack_into("<I", data, at + 22, 1000)  # its uncompressed size claims 1000 bytes
    check = streamed(bytes(data))
    assert at not in check.seen
    assert check.stopped == "end"  # the members after it are still followed


def test_a_central_directory_that_disagrees_is_not_trusted() -> None:
    """The stream saw a good member, but the central directory claims another CRC: read again, and refused."""
    data = bytearray(make_zip(blob=(PAYLOAD, STORED)))
    central = bytes(data).rindex(b"PK\x01\x02")  # the last entry: blob
    (crc,) = struct.unpack_from("<I", data, central + 16)
    struct.pack_into("<I", data, central + 16, crc ^ 1)
    check = streamed(bytes(data))
    assert len(check.seen) == 2
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf, pytest.raises(zipfile.BadZipFile, match="CRC"):
        check_members(zf, check, 1 << 20)


def test_check_file_reads_once_and_still_catches_damage(tmp_path) -> None:
    good = tmp_path / "good.zip"
    good.write_bytes(make_zip(blob=(PAYLOAD, STORED)))
    checked = check_file(str(good))
    assert (checked.size, checked.snapshot_version) == (good.stat().st_size, "7.0.5")
    bad = tmp_path / "bad.zip"
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="not a readable zip|damaged"):
        check_file(str(bad))


def test_check_zip_without_a_stream_reads_everything(tmp_path) -> None:
    path = tmp_path / "s.zip"
    data = bytearray(make_zip(blob=(PAYLOAD, STORED)))
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError):
        check_zip(str(path))


@settings(max_examples=60, deadline=None)
@given(junk=st.binary(max_size=2000), step=st.integers(min_value=1, max_value=700))
def test_any_bytes_in_any_pieces_never_raise_and_never_overclaim(junk, step) -> None:
    """Garbage, or a zip cut anywhere, never makes the stream raise; the pieces' size changes nothing; a cut
    stream never claims a member that the whole stream did not check."""
    full = make_zip(a=(junk, DEFLATED), b=(junk, STORED))
    whole = streamed(full, step)
    assert whole.seen == streamed(full, 1 << 20).seen
    assert len(whole.seen) == 3
    cut = streamed(full[: len(full) * len(junk) // 2001], step)
    assert cut.seen.items() <= whole.seen.items()
    noise = streamed(junk, step)
    assert not noise.seen or junk.startswith(b"PK\x03\x04")
