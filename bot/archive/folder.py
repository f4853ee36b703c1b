"""The off-manager snapshot archive in a local folder (`<root>/<manager>/<snapshot id>.zip`), and choosing the
archive the settings describe (this folder, or S3 in bot/archive/s3.py). The common path is bot/archive/base.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bot.archive.base import CHUNK_SIZE, Archive, safe_name
from bot.archive.receive import chunks_of, fsync_dir
from bot.archive.verify import check_file, check_zip
from bot.clock import Clock
from bot.core import ArchiveCopy
from bot.errors import ArchiveError

__all__ = ["CHUNK_SIZE", "Archive", "FolderArchive", "check_file", "check_zip", "open_archive", "safe_name"]


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
        fsync_dir(os.path.dirname(final))
        return final

    def _remove(self, location: str) -> bool:
        try:
            os.unlink(location)
        except FileNotFoundError:
            return False
        return True

    def _stored_size(self, location: str) -> int | None:
        try:
            return os.path.getsize(location)
        except OSError:
            return None

    @contextmanager
    def _local_copy(self, copy: ArchiveCopy) -> Iterator[str]:
        path = copy.location or self.location(copy.manager, copy.snapshot_id)
        if not os.path.exists(path):
            raise ArchiveError(f"the file {path} is missing")
        yield path

    def read(self, copy: ArchiveCopy) -> Iterator[bytes]:
        path = copy.location or self.location(copy.manager, copy.snapshot_id)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by the generator below
        except OSError as exc:
            raise ArchiveError(f"cannot read the archive copy {path}: {exc.strerror or exc}") from exc
        return chunks_of(fh)


def open_archive(settings: Any, store: Any, clock: Clock) -> Archive:
    """The archive the settings describe: S3 when `archive_url` is s3://…, else the folder `archive_dir`."""
    url = getattr(settings, "archive_url", "") or ""
    if url.startswith("s3://"):
        try:
            from bot.archive.s3 import S3Archive
        except ImportError as exc:
            raise ArchiveError(f"BOT_ARCHIVE_URL={url} needs boto3: pip install 'cfy-bot[s3]' ({exc})") from None
        archive: Archive = S3Archive(url, store, clock, staging=settings.archive_dir)
    else:
        archive = FolderArchive(settings.archive_dir, store, clock)
    archive.sweep_partials()  # at start-up: partial files of downloads whose process is gone
    return archive
