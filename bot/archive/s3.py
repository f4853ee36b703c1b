"""S3-compatible archive storage (`BOT_ARCHIVE_URL=s3://bucket/prefix`): the only module that imports boto3.

Downloads take the same verified path as the folder archive: streamed to a local temporary file, counted,
hashed and checked; only a verified file is uploaded (multipart, in fixed-size parts) to
`<prefix>/<manager>/<snapshot id>.zip`. An S3 object appears only when its upload completes, and a failed
multipart upload is aborted, so a half-written copy is never visible. Endpoint, credentials and region come
from boto3's own configuration (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` for MinIO, Ceph or moto,
`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`, ...).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from bot.archive.base import CHUNK_SIZE, Archive, safe_name
from bot.clock import Clock
from bot.core import ArchiveCopy
from bot.errors import ArchiveError

PART_SIZE = 8 << 20  # multipart part size: memory per part in flight, and S3's minimum is 5 MiB
_TRANSFER = TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE, max_concurrency=2,
                           io_chunksize=CHUNK_SIZE)


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` → ("bucket", "some/prefix")."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ArchiveError(f"{url!r} is not an s3://bucket/prefix URL")
    return parsed.netloc, parsed.path.strip("/")


def _why(exc: Exception) -> str:
    cause = exc.__context__ if isinstance(exc, Boto3Error) and isinstance(exc.__context__, ClientError) else exc
    if isinstance(cause, ClientError):
        err = cause.response.get("Error", {})
        return f"{err.get('Code', '?')}: {err.get('Message', '') or cause}"
    return str(exc)


class S3Archive(Archive):
    """Copies as S3 objects; checks run on a local temporary copy in `staging`."""

    kind = "s3"

    def __init__(self, url: str, store: Any, clock: Clock, staging: str, client: Any = None) -> None:
        super().__init__(store, clock, os.path.join(os.path.abspath(staging), ".s3-staging"))
        self.url = url
        self.bucket, self.prefix = parse_s3_url(url)
        self.client = client if client is not None else boto3.client("s3")

    def key(self, manager: str, snapshot_id: str) -> str:
        """The object key of (manager, snapshot)."""
        parts = [self.prefix, safe_name(manager), safe_name(snapshot_id) + ".zip"]
        return "/".join(p for p in parts if p)

    def location(self, manager: str, snapshot_id: str) -> str:
        return f"s3://{self.bucket}/{self.key(manager, snapshot_id)}"

    def _split(self, location: str) -> tuple[str, str]:
        bucket, key = parse_s3_url(location)
        return bucket, key

    def _temp_dir(self, manager: str) -> str:
        try:
            os.makedirs(self.staging, exist_ok=True)
        except OSError as exc:
            raise ArchiveError(f"cannot create the staging folder {self.staging}: {exc.strerror or exc}") from exc
        return self.staging

    def _place(self, temp: str, manager: str, snapshot_id: str, sha256: str) -> str:
        key = self.key(manager, snapshot_id)
        size = os.path.getsize(temp)
        try:
            self.client.upload_file(temp, self.bucket, key, Config=_TRANSFER,
                                    ExtraArgs={"Metadata": {"sha256": sha256},
                                               "ContentType": "application/zip"})
            stored = self.client.head_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError, Boto3Error) as exc:
            raise ArchiveError(f"uploading it to s3://{self.bucket}/{key} failed ({_why(exc)})") from exc
        if stored.get("ContentLength") != size:
            raise ArchiveError(f"s3://{self.bucket}/{key} holds {stored.get('ContentLength')} bytes after the "
                               f"upload, not {size}")
        return f"s3://{self.bucket}/{key}"

    def _remove(self, location: str) -> bool:
        bucket, key = self._split(location)
        try:
            try:
                self.client.head_object(Bucket=bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise
            self.client.delete_object(Bucket=bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise ArchiveError(f"could not delete {location} ({_why(exc)})") from exc
        return True

    def _body(self, location: str) -> Any:
        bucket, key = self._split(location)
        try:
            return self.client.get_object(Bucket=bucket, Key=key)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise ArchiveError(f"the object {location} is missing") from exc
            raise ArchiveError(f"cannot read {location} ({_why(exc)})") from exc
        except BotoCoreError as exc:
            raise ArchiveError(f"cannot read {location} ({_why(exc)})") from exc

    def read(self, copy: ArchiveCopy) -> Iterator[bytes]:
        location = copy.location or self.location(copy.manager, copy.snapshot_id)
        return self._stream(location, self._body(location))

    def _stream(self, location: str, body: Any) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(CHUNK_SIZE)
        except (BotoCoreError, ClientError) as exc:
            raise ArchiveError(f"reading {location} broke off ({_why(exc)})") from exc
        finally:
            body.close()

    def _stored_size(self, location: str) -> int | None:
        bucket, key = self._split(location)
        try:
            length = self.client.head_object(Bucket=bucket, Key=key).get("ContentLength")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise ArchiveError(f"cannot read {location} ({_why(exc)})") from exc
        except BotoCoreError as exc:
            raise ArchiveError(f"cannot read {location} ({_why(exc)})") from exc
        return length if isinstance(length, int) else None

    @contextmanager
    def _local_copy(self, copy: ArchiveCopy) -> Iterator[str]:
        location = copy.location or self.location(copy.manager, copy.snapshot_id)
        folder = self._temp_dir(copy.manager)
        temp = os.path.join(folder, f".verify.{secrets.token_hex(4)}.part")
        try:
            with open(temp, "xb") as out:
                for chunk in self._stream(location, self._body(location)):
                    out.write(chunk)
            yield temp
        finally:
            try:
                os.unlink(temp)
            except FileNotFoundError:
                pass
