"""The S3 archive against moto's server mode on 127.0.0.1: same guarantees as the folder archive."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest

pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

from bot.archive.folder import open_archive  # noqa: E402
from bot.errors import ArchiveError, CopyKept, ManagerUnreachable  # noqa: E402
from bot.store import Store  # noqa: E402
from test_archive import download, snapshot_zip  # noqa: E402

BUCKET = "cfy-backups"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch) -> str:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": s3_endpoint}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    import boto3

    client = boto3.client("s3")
    try:
        client.create_bucket(Bucket=BUCKET)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    return s3_endpoint


@pytest.fixture
def store(tmp_path, clock) -> Iterator[Store]:
    s = Store(tmp_path / "bot.db", clock=clock)
    yield s
    s.close()


class Settings:
    def __init__(self, tmp_path, url: str) -> None:
        self.archive_dir = str(tmp_path / "archive")
        self.archive_url = url


@pytest.fixture
def archive(s3_env, tmp_path, store, clock):
    return open_archive(Settings(tmp_path, f"s3://{BUCKET}/cfy/backups"), store, clock)


def keys(archive) -> list[str]:
    return sorted(o["Key"] for o in archive.client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def staged(archive) -> list[str]:
    return os.listdir(archive.staging) if os.path.isdir(archive.staging) else []


def save(archive, data, sid="daily-1"):
    dl = data if not isinstance(data, bytes) else download(data)
    return archive.save("production", sid, dl, manager_version="7.0.4", tenant="default_tenant",
                        created_at="2026-11-29T02:00:00Z")


def test_open_archive_picks_s3(archive) -> None:
    assert archive.kind == "s3" and archive.bucket == BUCKET and archive.prefix == "cfy/backups"


def test_multipart_upload_of_a_verified_copy(archive, store) -> None:
    data = snapshot_zip(payload=os.urandom(20 << 20))  # bigger than a part: a multipart upload
    row = save(archive, data)
    assert row.location == f"s3://{BUCKET}/cfy/backups/production/daily-1.zip" and row.verified
    assert row.sha256 == hashlib.sha256(data).hexdigest()
    assert keys(archive) == ["cfy/backups/production/daily-1.zip"] and staged(archive) == []
    head = archive.client.head_object(Bucket=BUCKET, Key="cfy/backups/production/daily-1.zip")
    assert head["Metadata"]["sha256"] == row.sha256 and head["ContentLength"] == len(data)
    assert b"".join(archive.read(row)) == data
    assert archive.verify(row).verified


def test_a_verified_copy_is_never_overwritten(archive, store) -> None:
    first = snapshot_zip(payload=b"first" * 100)
    kept = save(archive, first)
    with pytest.raises(CopyKept, match="A verified copy is never replaced"):
        save(archive, snapshot_zip(payload=b"other" * 100))
    assert b"".join(archive.read(kept)) == first and store.get_copy("production", "daily-1").sha256 == kept.sha256
    assert keys(archive) == ["cfy/backups/production/daily-1.zip"] and staged(archive) == []


@pytest.mark.parametrize("bad", ["truncated", "not-a-zip", "gone"])
def test_failures_upload_nothing_and_keep_the_catalog(archive, store, bad) -> None:
    data = snapshot_zip(payload=os.urandom(100_000))
    if bad == "truncated":
        dl = download(data[:5000], size=len(data))
    elif bad == "not-a-zip":
        dl = download(b"<html>oops</html>")
    else:
        def chunks():
            yield data[:1000]
            raise ManagerUnreachable("manager production broke off the download after 1000 bytes")
        from bot.cloudify import Download

        dl = Download(len(data), "x.zip", chunks())
    with pytest.raises(ArchiveError, match="partial file was removed"):
        save(archive, dl)
    assert keys(archive) == [] and staged(archive) == [] and store.list_copies() == []


def test_unknown_bucket_is_a_clear_error(s3_env, tmp_path, store, clock) -> None:
    arch = open_archive(Settings(tmp_path, "s3://no-such-bucket"), store, clock)
    with pytest.raises(ArchiveError, match="NoSuchBucket"):
        save(arch, snapshot_zip())
    assert store.list_copies() == [] and staged(arch) == []


def test_verify_notices_a_replaced_object(archive, store) -> None:
    row = save(archive, snapshot_zip(payload=b"one"))
    archive.client.put_object(Bucket=BUCKET, Key="cfy/backups/production/daily-1.zip", Body=b"not a zip")
    result = archive.verify(row)
    assert not result.verified and "it is 9 bytes," in result.error  # its size is checked before any byte is read
    assert staged(archive) == []


def test_verify_and_read_a_missing_object(archive, store) -> None:
    row = save(archive, snapshot_zip())
    archive.client.delete_object(Bucket=BUCKET, Key="cfy/backups/production/daily-1.zip")
    assert "missing" in archive.verify(row).error
    with pytest.raises(ArchiveError, match="missing"):
        archive.read(row)


def test_delete(archive, store) -> None:
    row = save(archive, snapshot_zip())
    assert archive.delete(row) is True
    assert keys(archive) == [] and store.get_copy("production", "daily-1") is None
    assert archive.delete(row) is False


def test_bad_url() -> None:
    from bot.archive.s3 import parse_s3_url

    assert parse_s3_url("s3://b") == ("b", "")
    with pytest.raises(ArchiveError):
        parse_s3_url("s3:///prefix")
