"""CREATE TABLE and CREATE INDEX for the store's migrations, with plain sqlite3."""

from __future__ import annotations

import sqlite3


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_table(db: sqlite3.Connection, name: str, columns: dict[str, type[int] | type[str]],
                 pk: str | tuple[str, ...], defaults: dict[str, int | str] | None = None,
                 not_null: bool = True) -> None:
    """CREATE TABLE IF NOT EXISTS, spelled as the first releases made it (with sqlite-utils), so that every
    database has the same schema text whichever version created it."""
    defaults = defaults or {}
    lines = []
    for column, kind in columns.items():
        line = f"   {_quoted(column)} {'INTEGER' if kind is int else 'TEXT'}"
        line += " PRIMARY KEY" if pk == column else ""
        line += " NOT NULL" if not_null else ""
        if column in defaults:
            value = defaults[column]
            line += f" DEFAULT {value}" if isinstance(value, int) else " DEFAULT '" + value.replace("'", "''") + "'"
        lines.append(line)
    if isinstance(pk, tuple):
        lines.append(f"   PRIMARY KEY ({', '.join(_quoted(c) for c in pk)})")
    db.execute(f"CREATE TABLE IF NOT EXISTS {_quoted(name)} (\n" + ",\n".join(lines) + "\n)")


def create_index(db: sqlite3.Connection, table: str, columns: list[str], name: str) -> None:
    """CREATE INDEX IF NOT EXISTS, spelled as create_table's tables."""
    db.execute(f"CREATE INDEX IF NOT EXISTS {_quoted(name)}\n    ON {_quoted(table)} "
               f"({', '.join(_quoted(c) for c in columns)})")
