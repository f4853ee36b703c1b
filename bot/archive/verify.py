"""Is a file a whole, readable Cloudify snapshot archive? (every member's CRC, metadata.json, the dumps)"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
import zlib
from dataclasses import dataclass
from collections.abc import Iterable
from typing import Any

from bot.archive.receive import CHUNK_SIZE
from bot.errors import ArchiveError
from bot.archive.zipstream import StreamCheck, check_members

VERSION = re.compile(r"^\d+(\.\d+)+([.+-]?[A-Za-z0-9.+-]*)?$")
LEGACY_KEYS = ("schema_revision", "stage_schema_revision", "composer_schema_revision")
MAX_METADATA = 1 << 20  # a metadata.json bigger than this is not one the manager wrote


@dataclass(frozen=True)
class Checked:
    """What the checks learnt about an archive file."""

    sha256: str
    size: int
    snapshot_version: str
    layout: str  # "legacy" | "new"


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


def read_format(path: str) -> tuple[str, str]:
    """The (snapshot_version, layout) a snapshot archive's metadata.json declares, reading nothing else."""
    try:
        with zipfile.ZipFile(path) as zf:
            metadata = _metadata(zf)
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"it is not a readable zip file ({exc})") from None
    return str(metadata["snapshot_version"]), "legacy" if all(k in metadata for k in LEGACY_KEYS) else "new"


HEAD_LIMIT = 8 << 20  # the most of a manager's archive read to find its metadata.json (new format: the first bytes)


def head_format(chunks: Iterable[bytes], limit: int = HEAD_LIMIT) -> tuple[str, str, int]:
    """(snapshot_version, layout, bytes read) from the metadata.json that streams past in the archive's first
    `limit` bytes; stops there. ArchiveError, saying why, when it is not found by then (a legacy archive's
    members are in no set order, so its metadata.json may come after a large database dump)."""
    check = StreamCheck(keep="metadata.json", keep_max=MAX_METADATA)
    read = 0
    for chunk in chunks:
        for at in range(0, len(chunk), 1 << 16):  # stop within 64 KiB of where metadata.json ends
            piece = chunk[at:at + (1 << 16)]
            check.feed(piece)
            read += len(piece)
            if check.kept is not None:
                metadata = _parse_metadata(check.kept)
                layout = "legacy" if all(k in metadata for k in LEGACY_KEYS) else "new"
                return str(metadata["snapshot_version"]), layout, read
            if check.stopped == "end":
                raise ArchiveError("it has no metadata.json at its root, so it is not a Cloudify snapshot")
            if check.stopped:
                raise ArchiveError(f"its members cannot be followed as they stream ({check.stopped}), so "
                                   "reading its metadata.json needs the whole archive")
            if read >= limit:
                raise ArchiveError(f"its metadata.json is not in its first {limit >> 20} MiB (a legacy archive "
                                   "stores its members in no set order), and the bot reads no more of it for "
                                   "the card")
    raise ArchiveError(f"it ended after {read} bytes, before its metadata.json")


def _metadata(zf: zipfile.ZipFile) -> dict[str, Any]:
    try:
        info = zf.getinfo("metadata.json")
    except KeyError:
        raise ArchiveError("it has no metadata.json at its root, so it is not a Cloudify snapshot") from None
    if info.file_size > MAX_METADATA:
        raise ArchiveError(f"its metadata.json is {info.file_size} bytes: not a snapshot's metadata")
    return _parse_metadata(zf.read(info))


def _parse_metadata(raw: bytes) -> dict[str, Any]:
    """metadata.json's object, checked: a JSON object naming a usable `snapshot_version`."""
    try:
        metadata = json.loads(raw)
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
