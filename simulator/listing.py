"""The list conventions shared by every list endpoint: pagination, sort, include, filters, search."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from simulator.http import ApiError, Request

_SORT_RE = re.compile(r"^[+-]?@?\w+$")
# Query keys with a leading underscore that list endpoints understand (others are ignored).
_KNOWN = ("_size", "_offset", "_sort", "_include", "_search", "_all_tenants", "_include_system_workflows",
          "_get_all_results", "_group_id", "_range", "_filter_id", "_evaluate_functions")


def _pydantic(name: str, raw: str, problem: str, kind: str) -> ApiError:
    message = (f"1 validation error for ListQueryParams\n{name}\n  {problem} "
               f"[type={kind}, input_value='{raw}', input_type=str]")
    return ApiError(400, "bad_parameters_error", message, with_traceback=False)


def non_negative(req: Request, name: str, default: int) -> int:
    """A `_size`/`_offset` value (pydantic-style 400 without `server_traceback` when invalid)."""
    raw = req.arg(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise _pydantic(name, raw, "Input should be a valid integer, unable to parse string as an integer",
                        "int_parsing") from None
    if value < 0:
        raise _pydantic(name, raw, "Input should be greater than or equal to 0", "greater_than_equal")
    return value


def as_bool(name: str, raw: Any) -> bool:
    """A boolean sent as JSON or as any case of 'true'/'false' (`verify_and_convert_bool`)."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ApiError(400, "bad_parameters_error", f"{name} must be <true/false>, got {raw}")


def query_bool(req: Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter."""
    raw = req.arg(name)
    return default if raw is None else as_bool(name, raw)


def _matches(value: Any, wanted: list[str]) -> bool:
    if isinstance(value, bool):
        return str(value).lower() in (w.lower() for w in wanted)
    return ("None" if value is None else str(value)) in wanted


def apply_filters(items: list[dict[str, Any]], req: Request, keys: Sequence[str],
                  skip: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Equality filters from every non-underscore query key; a repeated key means OR."""
    names = [k for k in req.query if not k.startswith("_") and k not in skip]
    unknown = [k for k in names if k not in keys]
    if unknown:
        raise ApiError(400, "bad_parameters_error",
                       f"Filter keys '{unknown}' do not exist. Allowed keys are: {list(keys)}")
    for name in names:
        items = [item for item in items if _matches(item.get(name), req.query[name])]
    return items


def _sorted(items: list[dict[str, Any]], req: Request, fields: Sequence[str],
            default: str | None) -> list[dict[str, Any]]:
    specs = req.query.get("_sort") or ([default] if default else [])
    for spec in specs:
        if not _SORT_RE.match(spec):
            raise _pydantic("_sort", spec, "String should match pattern '^[+-]?@?\\w+$'", "string_pattern_mismatch")
    bad = [s.lstrip("+-@") for s in specs if s.lstrip("+-@") not in fields]
    if bad:
        raise ApiError(400, "bad_parameters_error",
                       f"Sort keys '{bad}' do not exist. Allowed keys are: {list(fields)}")
    for spec in reversed(specs):
        name = spec.lstrip("+-@")
        items = sorted(items, key=lambda i: (i.get(name) is not None, _key(i.get(name))),
                       reverse=spec.startswith("-"))
    return items


def _key(value: Any) -> Any:
    return value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else str(value)


def include_fields(req: Request, fields: Sequence[str]) -> list[str] | None:
    """The `_include` projection, or None; 400 no_such_include_field_error for unknown fields."""
    raw = req.query.get("_include")
    if not raw:
        return None
    wanted = [f for value in raw for f in value.split(",") if f]
    illegal = [f for f in wanted if f not in fields]
    if illegal:
        raise ApiError(400, "no_such_include_field_error",
                       f"Illegal include fields: [{', '.join(illegal)}] - available fields: [{', '.join(fields)}]")
    return wanted


def project(item: dict[str, Any], include: list[str] | None) -> dict[str, Any]:
    """Keep only the included fields (all when `include` is None)."""
    return item if include is None else {k: item.get(k) for k in include}


def envelope(items: list[dict[str, Any]], req: Request, fields: Sequence[str], *,
             default_sort: str | None = "created_at", default_size: int = 1000,
             search: str | None = None, filtered: bool = True) -> dict[str, Any]:
    """Sort, paginate and project already-filtered rendered items into the list envelope."""
    size = non_negative(req, "_size", default_size)
    offset = non_negative(req, "_offset", 0)
    include = include_fields(req, fields)
    needle = req.arg("_search")
    if search and needle:
        items = [i for i in items if needle in str(i.get(search, ""))]
    items = _sorted(items, req, fields, default_sort if default_sort in fields else None)
    page = [project(i, include) for i in items[offset:offset + size]]
    pagination = {"total": len(items), "size": size, "offset": offset}
    meta: dict[str, Any] = {"pagination": pagination}
    if filtered:
        meta["filtered"] = None
    return {"metadata": meta, "items": page}
