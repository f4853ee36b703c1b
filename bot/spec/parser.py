"""Turn command text into a command and its arguments; never exits, never raises anything but UsageError."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from bot.errors import UsageError
from bot.spec.registry import Command, Param, Registry

MANAGER_FLAGS = ("-m", "--manager")
HELP_FLAGS = ("-h", "--help")
# Flags people carry over from the guide that cfy never had: answer with the real spelling.
KNOWN_MISTAKES = {
    "--include-credentials": "cfy has no --include-credentials: credentials are included unless you pass "
    "--exclude-credentials",
    "--tenant-name": "the tenant comes from the manager's configuration (CLOUDIFY_TENANT), not a flag",
}


class Args(dict[str, Any]):
    """Parsed arguments; readable as attributes (`args.snapshot_id`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


@dataclass(frozen=True)
class Parsed:
    """The outcome of parsing: a command with its args, or a help request."""

    command: Command | None
    args: Args = field(default_factory=Args)
    manager: str | None = None
    help_topic: tuple[str, ...] | None = None  # set when the user asked for help


# Characters a command may not hold: lone surrogates (bytes that were not UTF-8, or a broken \ud800 escape) and
# control characters other than tab and line ends (escape sequences, NUL, backspace, C1 controls).
_UNREADABLE = re.compile(r"[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
MAX_COMMAND_CHARS = 4000  # the longest command read; a presigned upload URL fits, a pasted file does not
_SPACE = " \t\r\n"


def tokenize(text: str) -> list[str]:
    """Split like a POSIX shell (as `shlex.split` does), in one pass; unbalanced quotes are a usage error."""
    if len(text) > MAX_COMMAND_CHARS:
        raise UsageError(f"the command is {len(text):,} characters long; the most the bot reads is "
                         f"{MAX_COMMAND_CHARS:,} (a long value belongs in a file or the configuration)")
    bad = _UNREADABLE.search(text)
    if bad:
        raise UsageError(_unreadable_character(text, bad.start()))
    words: list[str] = []
    word: list[str] = []  # characters of the word being read: appended, joined once (shlex concatenates)
    quoted, i, n = False, 0, len(text)
    while i < n:
        c = text[i]
        if c in _SPACE:
            if word or quoted:
                words.append("".join(word))
            word, quoted = [], False
        elif c == "\\":
            if i + 1 >= n:
                raise _unreadable("No escaped character")
            i += 1
            word.append(text[i])
        elif c in "'\"":
            i = _quoted(text, i, word)
            quoted = True
        else:
            word.append(c)
        i += 1
    if word or quoted:
        words.append("".join(word))
    return words


def _quoted(text: str, start: int, word: list[str]) -> int:
    """Read the quoted part opened at `start` into `word`; the index of its closing quote. Inside double quotes
    a backslash escapes only `"` and itself, inside single quotes nothing (POSIX, as shlex)."""
    quote, i, n = text[start], start + 1, len(text)
    while i < n:
        c = text[i]
        if c == quote:
            return i
        if c == "\\" and quote == '"':
            if i + 1 >= n:
                raise _unreadable("No escaped character")
            nxt = text[i + 1]
            word.append(nxt if nxt in '"\\' else c + nxt)
            i += 2
            continue
        end = text.find(quote, i) if quote == "'" else -1
        if end >= 0:  # a single-quoted run has no escapes: take it whole
            word.append(text[i:end])
            return end
        word.append(c)
        i += 1
    raise _unreadable("No closing quotation")


def _unreadable_character(text: str, at: int) -> str:
    """Which character cannot be read and where, without printing it (it may not be printable or encodable)."""
    code = ord(text[at])
    if 0xDC80 <= code <= 0xDCFF:  # how Python keeps a byte that is not UTF-8 (surrogateescape)
        what = f"the byte 0x{code - 0xDC00:02X}, which is not UTF-8 (set the terminal to UTF-8)"
    elif 0xD800 <= code <= 0xDFFF:
        what = f"U+{code:04X}, half of a character (a lone surrogate)"
    else:
        what = f"the control character U+{code:04X}"
    return f"character {at + 1} of the command is {what}; commands take printable text only"


def _unreadable(why: str) -> UsageError:
    return UsageError(f"could not read the command: {why} (check the quotes)")


def parse(text: str, registry: Registry) -> Parsed:
    """Parse `text` against `registry`."""
    words = tokenize(text)
    if words and words[0].lower() in ("cfy", "/cfy"):
        words = words[1:]
    if not words:
        return Parsed(None, help_topic=())
    if words[0].lower() == "help" and registry.lookup(words)[0] is None:
        return Parsed(None, help_topic=tuple(w for w in words[1:] if w not in HELP_FLAGS))
    cmd, used = registry.lookup(words)
    if cmd is None:
        raise _unknown(words, registry)
    rest = words[used:]
    if any(w in HELP_FLAGS for w in rest):
        return Parsed(cmd, help_topic=cmd.path)
    args, manager = _parse_params(cmd, rest)
    return Parsed(cmd, args, manager)


def _unknown(words: list[str], registry: Registry) -> UsageError:
    """A usage error for words that name no command, with a suggestion when one is close."""
    children = registry.children(words[0])
    if children:
        sub = words[1] if len(words) > 1 else ""
        subs = list(dict.fromkeys(c.path[1] for c in children))  # `backups prune` has two entries (--dry-run)
        names = ", ".join(subs)
        head = f"`{words[0]}` needs a sub-command" if not sub else f"no command `{words[0]} {sub}`"
        close = difflib.get_close_matches(sub, subs, n=1) if sub else []
        suggestion = f"{children[0].path[0]} {close[0]}" if close else ""
        return UsageError(f"{head}; try one of: {names}", suggestion=suggestion)
    hits = registry.suggest(words[:2]) or registry.suggest(words[:1])
    return UsageError(f"unknown command `{' '.join(words[:2])}`", suggestion=hits[0] if hits else "")


def _parse_params(cmd: Command, tokens: list[str]) -> tuple[Args, str | None]:
    """Bind `tokens` to the command's parameters."""
    args = Args({p.name: p.default for p in cmd.params})
    positionals = [p for p in cmd.params if p.positional]
    manager: str | None = None
    free: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "--":
            free.extend(tokens[i + 1 :])
            break
        if tok.startswith("-") and len(tok) > 1 and not _is_number(tok):
            name, _, inline = tok.partition("=")
            if cmd.manager_scoped and name in MANAGER_FLAGS:
                manager, i = _value(cmd, name, inline, tokens, i)
                continue
            param, value = _option(cmd, name)
            if param.kind == "bool":
                if inline:
                    raise UsageError(f"{name} takes no value", usage=cmd.usage())
                args[param.name] = value
                i += 1
                continue
            raw, i = _value(cmd, name, inline, tokens, i)
            args[param.name] = _convert(cmd, param, raw)
            continue
        free.append(tok)
        i += 1
    _bind_positionals(cmd, positionals, free, args)
    _refuse_exclusive(cmd, args)
    return args, manager


def _refuse_exclusive(cmd: Command, args: Args) -> None:
    """Options cfy declares mutually exclusive (`[-t T | -a]`) are refused together, as cfy refuses them."""
    given = {p.name: p for p in cmd.params if args.get(p.name) not in (None, "", False)}
    for p in given.values():
        for other in p.excludes:
            if other in given:
                mine, theirs = "/".join(p.flags), "/".join(given[other].flags)
                raise UsageError(f"give either {theirs} or {mine}, not both: they are mutually exclusive",
                                 usage=cmd.usage())


def _is_number(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def _value(cmd: Command, name: str, inline: str, tokens: list[str], i: int) -> tuple[str, int]:
    """The value of an option given as `--opt=V` or `--opt V`, and the index after it."""
    if inline:
        return inline, i + 1
    if i + 1 >= len(tokens):
        raise UsageError(f"option {name} needs a value", usage=cmd.usage())
    return tokens[i + 1], i + 2


def _option(cmd: Command, name: str) -> tuple[Param, bool]:
    """The parameter a flag names, and the value a bare bool flag sets."""
    for p in cmd.params:
        if name in p.flags:
            return p, True
        if p.negatable and name == "--no-" + p.flags[-1][2:]:
            return p, False
    if name in KNOWN_MISTAKES:
        raise UsageError(KNOWN_MISTAKES[name], usage=cmd.usage())
    flags = [f for p in cmd.params for f in p.flags if f.startswith("--")]
    flags += ["--no-" + p.flags[-1][2:] for p in cmd.params if p.negatable]
    close = difflib.get_close_matches(name, flags, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise UsageError(f"no such option: {name}{hint}", usage=cmd.usage())


def _convert(cmd: Command, p: Param, raw: str) -> Any:
    """Convert and check one value."""
    label = p.flags[-1] if p.flags else (p.metavar or p.name.upper())
    try:
        value: Any = {"int": int, "float": float}.get(p.kind, str)(raw)
    except ValueError:
        raise UsageError(f"{label} must be {'an integer' if p.kind == 'int' else 'a number'}, got {raw!r}",
                         usage=cmd.usage()) from None
    if p.kind in ("int", "float") and value < 0:
        raise UsageError(f"{label} must not be negative, got {raw!r}", usage=cmd.usage())
    if p.choices and value not in p.choices:
        raise UsageError(f"{label} must be one of {', '.join(p.choices)}; got {raw!r}", usage=cmd.usage())
    if p.check and (problem := p.check(value)):
        raise UsageError(problem, usage=cmd.usage())
    return value


def _bind_positionals(cmd: Command, params: list[Param], free: list[str], args: Args) -> None:
    """Give each positional parameter its word(s); too few or too many is a usage error."""
    for p in params:
        if p.rest:
            if free:
                args[p.name] = _convert(cmd, p, " ".join(free))
            free = []
        elif free:
            args[p.name] = _convert(cmd, p, free.pop(0))
        if p.required and args.get(p.name) in (None, ""):
            raise UsageError(f"missing argument {p.metavar or p.name.upper()}", usage=cmd.usage())
    if free:
        raise UsageError(f"unexpected argument {free[0]!r}", usage=cmd.usage())
