"""The parser: longest-prefix matching, aliases, options, and clear usage errors (never an exit)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import commands  # noqa: F401
from bot.errors import UsageError
from bot.spec.parser import parse, tokenize
from bot.spec.registry import REGISTRY, Param, Registry, command


def test_longest_prefix_and_aliases() -> None:
    assert parse("snapshots list", REGISTRY).command.name == "snapshots list"
    assert parse("snapshot list", REGISTRY).command.name == "snapshots list"
    assert parse("maintenance status", REGISTRY).command.name == "maintenance-mode status"
    assert parse("cfy snapshots list", REGISTRY).command.name == "snapshots list"
    assert parse("STATUS", REGISTRY).command.name == "status"


def test_options_and_values() -> None:
    p = parse("snapshots list --descending -s 20 --sort-by=id -m staging", REGISTRY)
    assert p.args.descending is True and p.args.size == 20 and p.args.sort_by == "id"
    assert p.manager == "staging"


@pytest.mark.parametrize("text, message", [
    ("snapshots lsit", "no command `snapshots lsit`"),
    ("snapshots", "needs a sub-command"),
    ("stauts", "unknown command"),
    ("snapshots list -s ten", "must be an integer"),
    ("snapshots list -s -3", "must not be negative"),
    ("snapshots list --sort-by color", "must be one of"),
    ("snapshots list --bogus", "no such option: --bogus"),
    ("snapshots list -s", "needs a value"),
    ("snapshots show", "missing argument SNAPSHOT_ID"),
    ("snapshots show 1bad", "must begin with a letter"),
    ("snapshots show 'a b'", "illegal characters"),
    ("snapshots show a b", "unexpected argument 'b'"),
    ('snapshots show "abc', "check the quotes"),
    ("snapshots list --descending=yes", "takes no value"),
])
def test_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse(text, REGISTRY)
    assert message in str(info.value)


def test_did_you_mean() -> None:
    with pytest.raises(UsageError) as info:
        parse("snapshots lsit", REGISTRY)
    assert info.value.suggestion == "snapshots list"
    with pytest.raises(UsageError) as info:
        parse("stauts", REGISTRY)
    assert info.value.suggestion == "status"
    with pytest.raises(UsageError) as info:
        parse("snapshots list --descendng", REGISTRY)
    assert "--descending" in str(info.value)


def test_help_forms() -> None:
    assert parse("", REGISTRY).help_topic == ()
    assert parse("snapshots list --help", REGISTRY).help_topic == ("snapshots", "list")
    assert parse("help snapshots", REGISTRY).command.name == "help"


def test_invented_flag_gets_the_real_spelling() -> None:
    reg = Registry()

    @command("snapshots create", summary="x", group="snapshots", registry=reg,
             params=[Param("exclude_credentials", ("--exclude-credentials",), kind="bool", default=False)])
    def _create(ctx, args):  # pragma: no cover - never run
        return None

    with pytest.raises(UsageError) as info:
        parse("snapshots create --include-credentials", reg)
    assert "--exclude-credentials" in str(info.value)


def test_negatable_flags() -> None:
    reg = Registry()

    @command("snapshots create", summary="x", group="snapshots", registry=reg,
             params=[Param("legacy", ("--legacy",), kind="bool", negatable=True, default=True)])
    def _create(ctx, args):  # pragma: no cover
        return None

    assert parse("snapshots create --no-legacy", reg).args.legacy is False
    assert parse("snapshots create --legacy", reg).args.legacy is True
    assert "[--legacy/--no-legacy]" in reg.commands[("snapshots", "create")].usage()


def test_registry_refuses_a_path_declared_twice() -> None:
    reg = Registry()
    command("a b", summary="x", group="g", registry=reg)(lambda c, a: None)
    with pytest.raises(ValueError):
        command("a b", summary="y", group="g", registry=reg)(lambda c, a: None)


def test_tokenize_keeps_quoted_words() -> None:
    assert tokenize('incident note "db node down"') == ["incident", "note", "db node down"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_random_text_never_escapes_as_anything_but_usage_error(text: str) -> None:
    try:
        parse(text, REGISTRY)
    except UsageError as exc:
        assert str(exc)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["snapshots", "snapshot", "list", "show", "status", "-m", "--help", "-s", "5",
                                 "maintenance", "cluster", "help", "'", '"', "--", "x", "--descending", "=",
                                 "restore", "latest", "-f", "--sort-by", "id"]), max_size=8))
def test_random_command_words(words: list[str]) -> None:
    try:
        parse(" ".join(words), REGISTRY)
    except UsageError as exc:
        assert str(exc)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab \t\n'\"\\é#$")), max_size=16))
def test_tokenize_splits_exactly_as_a_posix_shell(text: str) -> None:
    import shlex

    try:
        expected = shlex.split(text, posix=True)
    except ValueError as exc:
        with pytest.raises(UsageError, match=str(exc)):
            tokenize(text)
        return
    assert tokenize(text) == expected


def test_long_command_text_is_refused_with_a_clear_message() -> None:
    from bot.spec.parser import MAX_COMMAND_CHARS

    word = "x" * MAX_COMMAND_CHARS
    assert tokenize(word) == [word] and tokenize(f'"{word[2:]}"') == [word[2:]]  # as long as allowed: read
    with pytest.raises(UsageError, match=r"1,000,000 characters long; the most the bot reads is 4,000"):
        parse("snapshots show " + "x" * (1_000_000 - 15), REGISTRY)
