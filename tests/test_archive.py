"""The folder archive: streamed, verified copies; every failure removes the partial file and keeps the catalog."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.archive.folder import CHUNK_SIZE, FolderArchive, check_zip, open_archive, safe_name
from bot.cloudify import Download
from bot.errors import ArchiveError, CopyKept, ManagerUnreachable, NotFound
from bot.store import Store
from bot.archive.zipstream import StreamCheck


def snapshot_zip(layout: str = "new", payload: bytes = b"", version: str = "7.0.4",
                 metadata: object = None, extra: dict[str, bytes] | None = None) -> bytes:
    """A small but realistic snapshot archive (new or legacy layout) as bytes."""
    buf = io.BytesIO()
    if metadata is None:
        metadata = {"snapshot_version": version, "execution_id": "e-1"}
        if layout == "legacy":
            metadata = {"snapshot_version": version, "schema_revision": "a", "stage_schema_revision": "b",
                        "composer_schema_revision": "c"}
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", metadata if isinstance(metadata, (str, bytes)) else json.dumps(metadata))
        if layout == "new":
            zf.writestr("mgmt/00000001.json", json.dumps({"type": "tenants", "items": [{"name": "default_tenant"}]}))
            zf.writestr("tenants/default_tenant/00000001.json", json.dumps({"type": "blueprints", "items": []}))
        else:
            zf.writestr("pg_data", "-- dump\n")
        if payload:
            zf.writestr("blob.bin", payload, compress_type=zipfile.ZIP_STORED)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def download(data: bytes, size: int | None = -1, chunk: int = 64 * 1024) -> Download:
    """A Download like the client's: Content-Length `size` (default: the true length)."""
    chunks = (data[i:i + chunk] for i in range(0, len(data), chunk))
    return Download(len(data) if size == -1 else size, "x.zip", chunks)


@pytest.fixture
def store(tmp_path, clock) -> Iterator[Store]:
    s = Store(tmp_path / "bot.db", clock=clock)
    yield s
    s.close()


@pytest.fixture
def archive(tmp_path, store, clock) -> FolderArchive:
    return FolderArchive(str(tmp_path / "archive"), store, clock)


class Wrapped:
    """A temp file seen through a wrapper (writes go to `fh`)."""

    def __init__(self, fh) -> None:
        self.fh = fh

    def write(self, b) -> int:
        return self.fh.write(b)

    def fileno(self) -> int:
        return self.fh.fileno()

    def flush(self) -> None:
        self.fh.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.fh.close()


def files(archive: FolderArchive) -> list[str]:
    """Every file under the archive folder (temporary ones included)."""
    return sorted(os.path.relpath(os.path.join(d, f), archive.root) for d, _, fs in os.walk(archive.root) for f in fs)


def save(archive: FolderArchive, data: bytes | Download, sid: str = "daily-1", **kw):
    dl = data if isinstance(data, Download) else download(data)
    return archive.save("production", sid, dl, manager_version="7.0.4", tenant="default_tenant",
                        created_at="2026-11-29T02:00:01.123Z", **kw)


def test_a_good_download_is_verified_recorded_and_in_place(archive, store) -> None:
    data = snapshot_zip(payload=os.urandom(300_000))
    row = save(archive, data)
    assert row.verified and row.sha256 == hashlib.sha256(data).hexdigest() and row.size == len(data)
    assert row.snapshot_version == "7.0.4" and row.manager_version == "7.0.4"
    assert row.tenant == "default_tenant" and row.created_at.startswith("2026-11-29T02:00:01.123")
    assert row.layout == "new"
    assert files(archive) == ["production/daily-1.zip"]
    with open(row.location, "rb") as fh:
        assert fh.read() == data
    assert store.latest_verified("production").snapshot_id == "daily-1"


def test_legacy_layout_is_recognised(archive) -> None:
    assert save(archive, snapshot_zip("legacy", version="6.4.2")).layout == "legacy"


def test_progress_is_reported_with_the_expected_size(archive) -> None:
    data = snapshot_zip(payload=os.urandom(200_000))
    seen: list[tuple[int, int | None]] = []
    save(archive, data, progress=lambda n, total: seen.append((n, total)))
    assert seen[-1] == (len(data), len(data)) and [n for n, _ in seen] == sorted(n for n, _ in seen)


def test_big_chunks_are_written_in_fixed_size_pieces(archive, monkeypatch) -> None:
    data = snapshot_zip(payload=os.urandom(3 * CHUNK_SIZE + 5))
    writes: list[int] = []
    real = archive._open_temp

    class Recording(Wrapped):
        def write(self, b) -> int:
            writes.append(len(b))
            return self.fh.write(b)

    monkeypatch.setattr(archive, "_open_temp", lambda path: Recording(real(path)))
    save(archive, download(data, chunk=len(data)))
    assert max(writes) <= CHUNK_SIZE and sum(writes) == len(data)


def assert_nothing_kept(archive: FolderArchive, store: Store) -> None:
    assert files(archive) == [], "a partial or temporary file was left behind"
    assert store.list_copies() == [], "the catalog changed"


def test_truncated_download_is_refused(archive, store) -> None:
    data = snapshot_zip(payload=os.urandom(100_000))
    with pytest.raises(ArchiveError, match=r"stopped after 40000 of \d+ bytes \(truncated\).*partial file was removed"):
        save(archive, download(data[:40_000], size=len(data)))
    assert_nothing_kept(archive, store)


def test_more_bytes_than_announced_is_refused(archive, store) -> None:
    data = snapshot_zip()
    with pytest.raises(ArchiveError, match="more than the 100 bytes"):
        save(archive, download(data, size=100))
    assert_nothing_kept(archive, store)


def test_corrupt_bytes_are_caught_by_the_crc(archive, store) -> None:
    payload = os.urandom(200_000)
    data = bytearray(snapshot_zip(payload=payload))
    at = bytes(data).index(payload[:64]) + 1000
    data[at] ^= 0xFF
    with pytest.raises(ArchiveError, match="(?i)crc|damaged|not a readable zip"):
        save(archive, bytes(data))
    assert_nothing_kept(archive, store)


def test_not_a_zip_is_refused(archive, store) -> None:
    with pytest.raises(ArchiveError, match="not a readable zip"):
        save(archive, b"<html><body>502 Bad Gateway</body></html>")
    assert_nothing_kept(archive, store)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"metadata": None, "extra": {}}, None),
    ({"metadata": "{not json"}, "metadata.json does not parse"),
    ({"metadata": {"execution_id": "x"}}, "no usable snapshot_version"),
    ({"metadata": {"snapshot_version": "latest"}}, "no usable snapshot_version"),
    ({"metadata": [1, 2]}, "not a JSON object"),
    ({"extra": {"mgmt/00000002.json": b'{"items": []}'}}, "mgmt/00000002.json is not a"),
])
def test_metadata_must_name_a_snapshot_version(archive, store, kwargs, message) -> None:
    data = snapshot_zip(**kwargs)
    if message is None:  # the control case: a good archive
        save(archive, data)
        return
    with pytest.raises(ArchiveError, match=message):
        save(archive, data)
    assert_nothing_kept(archive, store)


def test_a_zip_without_metadata_is_not_a_snapshot(archive, store) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ArchiveError, match="no metadata.json"):
        save(archive, buf.getvalue())
    assert_nothing_kept(archive, store)


def test_manager_gone_mid_way(archive, store) -> None:
    data = snapshot_zip(payload=os.urandom(300_000))

    def chunks():
        yield data[:100_000]
        raise ManagerUnreachable("manager production at http://p broke off the download after 100000 bytes")

    with pytest.raises(ArchiveError, match="failed: manager production at http://p broke off the download after"):
        save(archive, Download(len(data), "x.zip", chunks()))
    assert_nothing_kept(archive, store)


class FullDisk(Wrapped):
    """A file whose disk fills up after `room` bytes (the one stand-in the tests use)."""

    def __init__(self, fh, room: int) -> None:
        super().__init__(fh)
        self.room = room

    def write(self, b) -> int:
        if len(b) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(b)
        return self.fh.write(b)


def test_disk_full(archive, store, monkeypatch) -> None:
    real = archive._open_temp
    monkeypatch.setattr(archive, "_open_temp", lambda path: FullDisk(real(path), 50_000))
    with pytest.raises(ArchiveError, match="disk of .* is full"):
        save(archive, snapshot_zip(payload=os.urandom(200_000)))
    assert_nothing_kept(archive, store)


def test_a_failure_on_the_checking_thread_ends_the_download_without_a_hang(archive, store, monkeypatch) -> None:
    """The receiving side is told at its next piece (the checking thread keeps draining, so nothing waits)."""
    def broken(self, data) -> None:
        raise MemoryError("no room to inflate")

    monkeypatch.setattr(StreamCheck, "feed", broken)
    with pytest.raises(MemoryError, match="no room to inflate"):
        save(archive, download(snapshot_zip(payload=os.urandom(3 * CHUNK_SIZE)), chunk=CHUNK_SIZE))
    assert_nothing_kept(archive, store)


def test_a_failed_download_keeps_the_previous_copy_and_its_row(archive, store) -> None:
    good = snapshot_zip(payload=b"first" * 1000)
    row = replace(save(archive, good), layout="")  # the catalog does not keep the layout
    with pytest.raises(ArchiveError):
        save(archive, download(good[:500], size=len(good)))
    assert store.get_copy("production", "daily-1") == row
    with open(row.location, "rb") as fh:
        assert fh.read() == good
    assert files(archive) == ["production/daily-1.zip"]


def test_a_verified_copy_is_never_replaced_by_other_content(archive, store) -> None:
    first = snapshot_zip(payload=b"a" * 10)
    kept = replace(save(archive, first), layout="")
    with pytest.raises(CopyKept, match=r"already keeps a verified copy of snapshot daily-1 of production with "
                                       r"other content .*it was kept, and the new download was removed"):
        save(archive, snapshot_zip(payload=b"b" * 20, version="7.0.5"))
    assert store.get_copy("production", "daily-1") == replace(kept, verified_at=store.get_copy(
        "production", "daily-1").verified_at)  # re-checked before refusing, otherwise unchanged
    with open(kept.location, "rb") as fh:
        assert fh.read() == first
    assert files(archive) == ["production/daily-1.zip"]


def test_the_same_content_again_is_the_same_copy(archive, store) -> None:
    data = snapshot_zip(payload=b"a" * 10)
    save(archive, data)
    row = save(archive, data)
    assert row.sha256 == hashlib.sha256(data).hexdigest() and row.verified and len(store.list_copies()) == 1


def test_a_kept_copy_that_fails_its_check_is_replaced(archive, store) -> None:
    kept = save(archive, snapshot_zip(payload=b"a" * 10))
    os.unlink(kept.location)  # the catalog still says verified: the file is gone
    second = snapshot_zip(payload=b"b" * 20, version="7.0.5")
    row = save(archive, second)
    assert row.snapshot_version == "7.0.5" and row.sha256 == hashlib.sha256(second).hexdigest() and row.verified
    assert len(store.list_copies()) == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_any_truncation_is_refused(archive, store, cut) -> None:
    data = snapshot_zip(payload=bytes(range(256)) * 30)
    cut = min(cut, len(data) - 1)
    with pytest.raises(ArchiveError):
        save(archive, download(data[:cut], size=len(data)))
    assert_nothing_kept(archive, store)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.binary(max_size=2000))
def test_random_bytes_are_never_accepted(archive, store, junk) -> None:
    with pytest.raises(ArchiveError):
        save(archive, junk)
    assert_nothing_kept(archive, store)


# --- verify, read, delete, find ---------------------------------------------------------------------------


def test_verify_a_good_copy(archive, store, clock) -> None:
    row = save(archive, snapshot_zip())
    clock.advance(3600)
    again = archive.verify(row)
    assert again.verified and again.error == "" and again.verified_at > row.verified_at


def test_verify_notices_a_changed_file(archive, store) -> None:
    data = snapshot_zip(payload=os.urandom(50_000))
    row = save(archive, data)
    with open(row.location, "r+b") as fh:  # rot one byte of the stored payload
        fh.seek(len(data) // 2)
        b = fh.read(1)
        fh.seek(len(data) // 2)
        fh.write(bytes([b[0] ^ 1]))
    result = archive.verify(row)
    assert not result.verified and result.error
    assert store.latest_verified("production") is None


def test_verify_notices_a_replaced_but_valid_file(archive, store) -> None:
    row = save(archive, snapshot_zip(payload=b"one"))
    with open(row.location, "wb") as fh:
        fh.write(snapshot_zip(payload=b"two"))
    result = archive.verify(row)
    assert not result.verified and "sha256 differs" in result.error


def test_verify_notices_a_missing_file(archive, store) -> None:
    row = save(archive, snapshot_zip())
    os.unlink(row.location)
    result = archive.verify(row)
    assert not result.verified and "missing" in result.error


def test_read_streams_in_fixed_size_chunks(archive) -> None:
    data = snapshot_zip(payload=os.urandom(2 * CHUNK_SIZE + 7))
    row = save(archive, data)
    chunks = list(archive.read(row))
    assert b"".join(chunks) == data and max(map(len, chunks)) <= CHUNK_SIZE


def test_read_of_a_missing_file_is_an_archive_error(archive) -> None:
    row = save(archive, snapshot_zip())
    os.unlink(row.location)
    with pytest.raises(ArchiveError, match="cannot read"):
        archive.read(row)


def test_delete_removes_file_and_row(archive, store) -> None:
    row = save(archive, snapshot_zip())
    assert archive.delete(row) is True
    assert files(archive) == [] and store.get_copy("production", "daily-1") is None
    assert archive.delete(row) is False


def test_find_prefers_the_managers_own_copy_then_any_verified(archive, store) -> None:
    save(archive, snapshot_zip(), sid="shared")
    other = archive.save("staging", "shared", download(snapshot_zip()), created_at="2026-11-30T00:00:00Z")
    assert archive.find("shared", "production").manager == "production"
    assert archive.find("shared", "dr-site").manager in ("production", "staging")
    assert archive.find("shared", "staging").location == other.location
    store.mark_verified("staging", "shared", False, "rotten")
    assert archive.find("shared", "dr-site").manager == "production"
    with pytest.raises(NotFound, match="no copy of snapshot nope"):
        archive.find("nope", "production")


def test_names_never_escape_the_folder(archive) -> None:
    assert safe_name("a/../b") == "a%2F..%2Fb"
    for bad in ("", ".", ".."):
        with pytest.raises(ArchiveError):
            safe_name(bad)
    row = save(archive, snapshot_zip(), sid="../../etc/passwd")
    assert os.path.dirname(row.location) == os.path.join(archive.root, "production")


def test_check_zip_on_a_file(tmp_path) -> None:
    path = tmp_path / "s.zip"
    path.write_bytes(snapshot_zip("legacy", version="5.2.7"))
    assert check_zip(str(path)) == ("5.2.7", "legacy")


def test_open_archive_defaults_to_the_folder(tmp_path, store, clock) -> None:
    class S:
        archive_dir = str(tmp_path / "arch")
        archive_url = ""

    arch = open_archive(S(), store, clock)
    assert isinstance(arch, FolderArchive) and arch.root == str(tmp_path / "arch")


def test_upload_copy_rechecks_then_streams(archive, store) -> None:
    data = snapshot_zip(payload=os.urandom(2 * CHUNK_SIZE))
    row = save(archive, data)
    received: list[bytes] = []

    class Client:
        def upload_snapshot(self, sid, chunks=None, url=None, tenant=None):
            received.extend(chunks)
            return {"id": sid, "status": "uploaded"}

    assert archive.upload_copy(row, Client(), "restored-1")["status"] == "uploaded"
    assert b"".join(received) == data and max(map(len, received)) <= CHUNK_SIZE
    with open(row.location, "r+b") as fh:
        fh.write(b"XX")
    received.clear()
    with pytest.raises(ArchiveError, match="failed its check, so it was not uploaded"):
        archive.upload_copy(row, Client(), "restored-1")
    assert received == [] and not store.get_copy("production", "daily-1").verified


def test_temp_files_of_a_killed_bot_are_swept_later(archive, clock) -> None:
    folder = os.path.join(archive.root, "production")
    os.makedirs(folder)
    stale, fresh = os.path.join(folder, ".old.1234.part"), os.path.join(folder, ".busy.5678.part")
    for path, age in ((stale, 2 * 86400), (fresh, 60)):
        with open(path, "wb") as fh:
            fh.write(b"partial")
        os.utime(path, (clock.time() - age, clock.time() - age))
    save(archive, snapshot_zip())
    assert files(archive) == ["production/.busy.5678.part", "production/daily-1.zip"]


# --- issue 16: long snapshot ids, cleanup errors, partial files of processes that are gone --------------------


@pytest.mark.parametrize("sid", ["s" * 256, "x" * 240 + "-" + "é" * 15, "daily-" + "%" * 250, "a" * 179, "a" * 180])
def test_any_id_the_manager_accepts_gets_a_file_name_that_fits(archive, store, sid: str) -> None:
    row = save(archive, snapshot_zip(), sid=sid)
    name = os.path.basename(row.location)
    assert len(name.encode()) <= 255 and row.snapshot_id == sid  # the catalog keeps the real id
    assert store.get_copy("production", sid).location == row.location
    assert archive.verify(row).verified


def test_long_ids_sharing_a_start_get_different_files_and_short_ids_never_look_cut() -> None:
    a, b = "s" * 250 + "-a", "s" * 250 + "-b"
    assert safe_name(a) != safe_name(b) and len(safe_name(a)) == len(safe_name(b)) == 180
    assert len(safe_name("s" * 179)) == 179 and "~" not in safe_name("s" * 179)


def test_a_cleanup_error_never_replaces_the_first_error(archive, store, monkeypatch) -> None:
    import bot.archive.base as base

    def refuse(path: str) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", path)

    real = archive._open_temp
    monkeypatch.setattr(archive, "_open_temp", lambda path: FullDisk(real(path), 50_000))
    monkeypatch.setattr(base, "unlink", refuse)
    with pytest.raises(ArchiveError, match="disk of .* is full"):
        save(archive, snapshot_zip(payload=os.urandom(200_000)), sid="x" * 256)
    assert store.get_copy("production", "x" * 256) is None


def test_partial_files_of_a_process_that_is_gone_are_removed_at_start_up(tmp_path, store, clock) -> None:
    import subprocess
    import sys

    from bot.archive.base import _host_tag, temp_name

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(gone.stdout)
    folder = tmp_path / "archive" / "production"
    folder.mkdir(parents=True)
    dead = folder / f".daily-1.{_host_tag()}-{dead_pid}-abcd1234.part"
    mine = folder / temp_name("daily-2")  # this process: a download may be running
    other_host = folder / f".daily-3.00000000-{dead_pid}-abcd1234.part"  # cannot tell: the age rule decides
    for path in (dead, mine, other_host):
        path.write_bytes(b"partial")
    settings = type("S", (), {"archive_url": "", "archive_dir": str(tmp_path / "archive")})()
    open_archive(settings, store, clock)
    assert not dead.exists() and mine.exists() and other_host.exists()


def test_the_temp_file_goes_around_the_page_cache_while_writes_allow_and_through_it_after(tmp_path) -> None:
    """O_DIRECT for whole, page-aligned blocks; a tail that is not whole blocks, or a write the file system
    refuses (here: memory that is not aligned), turns it off; the bytes are the same either way."""
    import mmap

    from bot.archive.receive import ALIGN, TempFile

    block = mmap.mmap(-1, 2 * ALIGN)
    block.write(os.urandom(2 * ALIGN))
    with TempFile(str(tmp_path / "a.part")) as fh:
        if not fh.direct:
            pytest.skip("this file system has no O_DIRECT: every write goes through the page cache")
        assert fh.write(memoryview(block)) == 2 * ALIGN and fh.direct  # whole aligned blocks: around the cache
        assert fh.write(b"tail") == 4 and not fh.direct  # not whole blocks: through the cache from here on
    with TempFile(str(tmp_path / "b.part")) as fh:
        assert fh.direct
        misaligned = memoryview(block)[1:ALIGN + 1]  # whole blocks, but at an odd address: EINVAL, then cached
        assert fh.write(misaligned) == ALIGN and not fh.direct
    assert (tmp_path / "a.part").read_bytes() == bytes(block) + b"tail"
    assert (tmp_path / "b.part").read_bytes() == bytes(misaligned)
    with pytest.raises(FileExistsError):
        TempFile(str(tmp_path / "a.part"))


def test_a_download_of_whole_buffers_and_a_tail_is_stored_byte_for_byte(archive, store) -> None:
    data = snapshot_zip(payload=os.urandom(3 * CHUNK_SIZE - 77))
    row = save(archive, download(data, chunk=CHUNK_SIZE + 3))
    with open(row.location, "rb") as fh:
        assert fh.read() == data
    assert row.sha256 == hashlib.sha256(data).hexdigest() and row.size == len(data)


def test_a_cancel_during_a_download_stops_it_and_keeps_nothing(archive, store, clock) -> None:
    """transfer_progress is a step boundary: a cancel asked while a copy streams stops it within a second of the
    bot's clock, and the archive keeps no partial file and no catalog row."""
    from types import SimpleNamespace

    from bot.errors import Cancelled
    from commands.archive_copy import transfer_progress

    asked_at = clock.time() + 5.0
    steps: list[str] = []

    def check_cancel() -> None:
        if clock.time() >= asked_at:
            raise Cancelled("cancelled by shell:bob before the point of no return")

    ctx = SimpleNamespace(clock=clock, check_cancel=check_cancel,
                          step=lambda text, **_: steps.append(text))
    report = transfer_progress(ctx, "daily-1", "downloading")  # type: ignore[arg-type]

    def slow(n: int, total: int | None) -> None:
        clock.advance(0.25)  # each chunk takes a quarter of a second
        report(n, total)

    data = snapshot_zip(payload=os.urandom(2_000_000))
    with pytest.raises(Cancelled):
        save(archive, download(data, chunk=16 * 1024), progress=slow)
    assert 0 <= clock.time() - asked_at <= 1.0
    assert steps and all(s.startswith("downloading daily-1: ") for s in steps)  # it reported until stopped
    assert_nothing_kept(archive, store)
