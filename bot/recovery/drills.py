"""Restore drills' checks: what a snapshot holds (entity files or dump), what a restored manager lists, the
named differences, and how drill results read (durations, sparkline, the daily summary's line and alarm)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bot.core import DrillResult, count

KINDS = ("blueprints", "deployments", "secrets", "plugins", "sites")
KEY = {"blueprints": "id", "deployments": "id", "secrets": "key", "plugins": "id", "sites": "name"}
DETAIL = {"deployments": "blueprint_id", "plugins": "package_version", "sites": "location"}  # also compared
DETAIL_WORD = {"deployments": "blueprint", "plugins": "version", "sites": "location", "users": "role"}
LEGACY_KEYS = ("schema_revision", "stage_schema_revision", "composer_schema_revision")
SPARKS = "▁▂▃▄▅▆▇█"
USERS = ""  # the tenant slot of manager-wide users

Item = tuple[str, str, str]  # (tenant or "", kind, identifier)


class Lister(Protocol):
    """What the checks read from a restored manager (bot.cloudify.Manager has these)."""

    def list_tenants(self, *, bypass_maintenance: bool = False) -> list[str]: ...
    def list_users(self, *, bypass_maintenance: bool = False) -> list[dict[str, Any]]: ...
    def list_entities(self, kind: str, tenant: str, *, bypass_maintenance: bool = False) -> list[dict[str, Any]]: ...


class ContentUnreadable(Exception):
    """The snapshot's content cannot be read for comparison (a real pg_dump, a damaged member)."""


@dataclass(frozen=True)
class Content:
    """Entities per tenant (and users), each with the one attribute that is compared besides its name."""

    items: tuple[tuple[Item, str], ...]
    legacy: bool = False
    tenant_names: tuple[str, ...] = ()  # every tenant, also those without entities (mgmt dump, or GET /tenants)

    def as_map(self) -> dict[Item, str]:
        """{(tenant, kind, id): detail}."""
        return dict(self.items)

    def tenants(self) -> set[str]:
        """The tenants the content covers."""
        return {t for (t, _k, _i), _d in self.items if t}

    def counts(self) -> dict[str, int]:
        """How many of each kind (users included)."""
        out: dict[str, int] = {}
        for (_t, kind, _i), _d in self.items:
            out[kind] = out.get(kind, 0) + 1
        return out


def _row(tenant: str, kind: str, row: dict[str, Any]) -> tuple[Item, str]:
    detail = row.get(DETAIL[kind]) if kind in DETAIL else ""
    return (tenant, kind, str(row.get(KEY[kind]))), "" if detail is None else str(detail)


def _user(row: dict[str, Any]) -> tuple[Item, str]:
    return (USERS, "users", str(row.get("username"))), str(row.get("role") or "")


def snapshot_content(path: str) -> Content:
    """The entities a snapshot zip holds: from its entity files (new format) or its dump (legacy)."""
    try:
        with zipfile.ZipFile(path) as zf:
            metadata = json.loads(zf.read("metadata.json"))
            if isinstance(metadata, dict) and all(k in metadata for k in LEGACY_KEYS):
                return _legacy(zf)
            return _new(zf)
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ContentUnreadable(f"the snapshot's entities could not be read: {exc}") from None


def _new(zf: zipfile.ZipFile) -> Content:
    items: list[tuple[Item, str]] = []
    tenants: set[str] = set()
    for name in sorted(zf.namelist()):
        parts = name.split("/")
        if not name.endswith(".json") or parts[0] not in ("mgmt", "tenants"):
            continue
        if (parts[0] == "mgmt" and len(parts) != 2) or (parts[0] == "tenants" and len(parts) != 3):
            continue  # blueprint archives and the like live in sub-folders
        doc = json.loads(zf.read(name))
        if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
            continue
        if parts[0] == "mgmt" and doc.get("type") == "users":
            items += [_user(u) for u in doc["items"]]
        elif parts[0] == "mgmt" and doc.get("type") == "tenants":
            tenants |= {str(t.get("name")) for t in doc["items"] if isinstance(t, dict)}
        elif parts[0] == "tenants" and doc.get("type") in KINDS:
            items += [_row(parts[1], str(doc["type"]), r) for r in doc["items"]]
    tenants |= {t for (t, _k, _i), _d in items if t}
    return Content(tuple(items), legacy=False, tenant_names=tuple(sorted(tenants)))


def _legacy(zf: zipfile.ZipFile) -> Content:
    try:
        dump = json.loads(zf.read("pg_data"))
    except (KeyError, ValueError, UnicodeDecodeError):
        raise ContentUnreadable("the snapshot is legacy and its `pg_data` is a PostgreSQL dump the bot cannot "
                                "read, so the restored content was not compared") from None
    items = [_user({"username": n, **u}) for n, u in (dump.get("users") or {}).items()]
    for kind in KINDS:
        for tenant, rows in (dump.get(kind) or {}).items():
            items += [_row(tenant, kind, r) for r in rows]
    return Content(tuple(items), legacy=True)


def manager_content(client: Lister, tenants: Iterable[str] | None = None, bypass_maintenance: bool = False) -> Content:
    """What a manager lists now, for `tenants` (those the snapshot holds; None: all of the manager's), plus its
    users; `bypass_maintenance` reads it while maintenance mode is on (sys-admin)."""
    bypass = bypass_maintenance
    items = [_user(u) for u in client.list_users(bypass_maintenance=bypass)]
    present = set(client.list_tenants(bypass_maintenance=bypass))
    for tenant in sorted(present if tenants is None else set(tenants) & present):
        for kind in KINDS:
            items += [_row(tenant, kind, r) for r in client.list_entities(kind, tenant, bypass_maintenance=bypass)]
    return Content(tuple(items), tenant_names=tuple(sorted(present)))


def _where(tenant: str) -> str:
    return f"tenant {tenant}: " if tenant else ""


def compare(expected: Content, actual: Content, target_tenants: Sequence[str] = ()) -> list[str]:
    """Every difference between the snapshot and the restored manager, named; [] when they match."""
    want, have = expected.as_map(), actual.as_map()
    out = [f"tenant {t}: missing after the restore (the snapshot has it)" for t in sorted(expected.tenants())
           if target_tenants and t not in target_tenants]
    for (tenant, kind, ident), detail in sorted(want.items()):
        name = f"{_where(tenant)}{kind[:-1]} {ident}"
        if (tenant, kind, ident) not in have:
            if not target_tenants or not tenant or tenant in target_tenants:
                out.append(f"{name}: missing after the restore")
        elif have[(tenant, kind, ident)] != detail:
            word = DETAIL_WORD.get(kind, "value")
            out.append(f"{name}: {word} is {have[(tenant, kind, ident)] or '(empty)'} after the restore, "
                       f"the snapshot has {detail or '(empty)'}")
    for (tenant, kind, ident) in sorted(set(have) - set(want)):
        out.append(f"{_where(tenant)}{kind[:-1]} {ident}: on the target but not in the snapshot")
    return out


COUNTED = ("blueprints", "deployments", "secrets", "plugins")  # with tenants: what a restore's report counts
EXTRA = ": on the target but not in the snapshot"


@dataclass(frozen=True)
class RestoreCheck:
    """A restore's content read back: what the snapshot holds against what the manager now has."""

    snapshot: tuple[tuple[str, int], ...]  # ("tenants", n), then each COUNTED kind
    manager: tuple[tuple[str, int], ...]
    tenant_lines: tuple[str, ...]  # the tenants whose counts differ, each with both sides' counts
    missing: tuple[str, ...]  # each of the snapshot's entities that is missing or differs, named
    extra: int  # entities the manager has that the snapshot does not hold (a new-format restore deletes none)


def _counts(content: Content, tenant: str | None = None) -> tuple[tuple[str, int], ...]:
    """Each COUNTED kind in `tenant` (None: in all, and the tenants first)."""
    kinds = tuple((kind, sum(1 for (t, k, _i), _d in content.items if k == kind and tenant in (None, t)))
                  for kind in COUNTED)
    return kinds if tenant is not None else (("tenants", len(content.tenant_names)), *kinds)


def counts_text(counts: Sequence[tuple[str, int]]) -> str:
    """`3 tenants, 4 blueprints, 1 deployment, …` (singular for one)."""
    return ", ".join(count(n, kind[:-1], kind) for kind, n in counts)


def restore_check(expected: Content, actual: Content, manager: str) -> RestoreCheck:
    """Compare the snapshot's tenants and COUNTED entities with what `manager` lists after the restore."""
    want = Content(tuple(i for i in expected.items if i[0][1] in COUNTED), tenant_names=expected.tenant_names)
    have = Content(tuple(i for i in actual.items if i[0][1] in COUNTED), tenant_names=actual.tenant_names)
    on_manager = set(have.tenant_names)
    gone = [f"tenant {t}: missing after the restore (the snapshot has it)" for t in want.tenant_names
            if t not in on_manager and t not in want.tenants()]  # compare() names those with entities
    named = [m for m in compare(want, have, have.tenant_names) if not m.endswith(EXTRA)]
    lines = []
    for tenant in sorted(set(want.tenant_names) | on_manager):
        mine, theirs = _counts(want, tenant), _counts(have, tenant)
        if mine != theirs:
            lines.append(f"tenant {tenant}: the snapshot holds {counts_text(mine)}; {manager} has "
                         f"{counts_text(theirs)}")
    extra = len(set(have.as_map()) - set(want.as_map()))
    return RestoreCheck(_counts(want), _counts(have), tuple(lines), tuple(gone + named), extra)


def duration(seconds: float | None) -> str:
    """`4m12s`, `1h03m`, `38s` (a drill's recovery time, to the second)."""
    if seconds is None:
        return "-"
    s = int(round(max(seconds, 0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def sparkline(values: Sequence[float | None]) -> str:
    """One block per value, scaled between the smallest and largest; `·` where there is none."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = high - low
    out = []
    for v in values:
        if v is None:
            out.append("·")
        else:
            out.append(SPARKS[0 if span == 0 else round((v - low) / span * (len(SPARKS) - 1))])
    return "".join(out)


def ago(seconds: float) -> str:
    """`2 days ago`, `5 hours ago`, `just now`."""
    s = int(max(seconds, 0))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if s >= size:
            n = s // size
            return f"{count(n, unit)} ago"
    return "just now"


def summary_line(source: str, last: DrillResult | None, now: datetime) -> str:
    """The daily summary's line for one source: its last drill, or that there was none."""
    if last is None:
        return f"last drill of {source}: none yet"
    how = (f"passed, recovered in {duration(last.recovery_seconds)}" if last.passed
           else f"FAILED ({last.reason or f'{len(last.mismatches)} mismatches'})")
    when = ago((now - last.finished_at).total_seconds())
    return f"last drill: {last.snapshot_id} on {last.target}, {how}, {when}"


def drill_alarm(source: str, last: DrillResult | None, last_pass: DrillResult | None, now: datetime,
                max_age: float, has_target: bool) -> str:
    """Why the drills of `source` need attention ("" when they do not)."""
    if not has_target:
        return ""
    if last is not None and not last.passed:
        return (f"the last restore drill of {source} FAILED ({last.snapshot_id} on {last.target}: "
                f"{last.reason or '; '.join(last.mismatches[:3])})")
    if last_pass is None:
        return f"{source} has no passing restore drill yet; run `backups drill latest -m {source}`"
    old = (now - last_pass.finished_at).total_seconds()
    if old > max_age:
        return (f"the last passing restore drill of {source} is {ago(old).removesuffix(' ago')} old, "
                f"older than BOT_MAX_DRILL_AGE ({duration(max_age) if max_age < 86400 else f'{max_age / 86400:g}d'})")
    return ""


def phases_text(phases: Sequence[tuple[str, float]]) -> str:
    """`upload 12s, maintenance 3s, restore 3m40s, …`."""
    return ", ".join(f"{name} {duration(s)}" for name, s in phases)




class DrillChecks:
    """The `Drills` port of bot.engine.context: a drill's content checks and how its results read."""

    def snapshot_content(self, path: str) -> Content:
        """What the snapshot file at `path` holds; ContentUnreadable when it cannot be read."""
        return snapshot_content(path)

    def manager_content(self, client: Lister, tenants: Iterable[str] | None = None,
                        bypass_maintenance: bool = False) -> Content:
        """What a manager lists now, for `tenants` (None: all), plus its users."""
        return manager_content(client, tenants, bypass_maintenance)

    def restore_check(self, expected: Content, actual: Content, manager: str) -> RestoreCheck:
        """A restore's tenants and counted entities: the snapshot's against what `manager` lists after it."""
        return restore_check(expected, actual, manager)

    def counts_text(self, counts: Sequence[tuple[str, int]]) -> str:
        """`3 tenants, 4 blueprints, 1 deployment, …`."""
        return counts_text(counts)

    def compare(self, expected: Content, actual: Content, target_tenants: Sequence[str] = ()) -> list[str]:
        """Every difference between the snapshot and the restored manager, named; [] when they match."""
        return compare(expected, actual, target_tenants)

    def duration(self, seconds: float | None) -> str:
        """`4m12s`, `1h03m`, `38s`."""
        return duration(seconds)

    def sparkline(self, values: Sequence[float | None]) -> str:
        """One block per value, scaled between the smallest and largest."""
        return sparkline(values)

    def phases_text(self, phases: Sequence[tuple[str, float]]) -> str:
        """`upload 12s, maintenance 3s, restore 3m40s, …`."""
        return phases_text(phases)

    def summary_line(self, source: str, last: DrillResult | None, now: datetime) -> str:
        """The daily summary's line for one source."""
        return summary_line(source, last, now)

    def drill_alarm(self, source: str, last: DrillResult | None, last_pass: DrillResult | None, now: datetime,
                    max_age: float, has_target: bool) -> str:
        """Why the drills of `source` need attention ("" when they do not)."""
        return drill_alarm(source, last, last_pass, now, max_age, has_target)
