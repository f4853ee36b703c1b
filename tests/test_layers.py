"""DESIGN §1/§10, issue 13: the layers, checked over every module and every import form.

Every `.py` file under bot/, commands/ and simulator/ is a module here. Its imports are read with `ast`, in
all their forms (`import a.b`, `from a import b` where b may be a module, `from a.b import c`, relative
imports, imports inside functions); each is resolved to the first-party module it loads. Imports under
`if TYPE_CHECKING:` never run, so they do not count for cycles, but they do count for who may name what.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import types
import typing
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "commands", "simulator")
# third-party library -> the only files that may import it (a path ending in "/" allows that package's files)
FOREIGN = {
    "slack_bolt": {"bot/slack/"},
    "slack_sdk": {"bot/slack/"},
    "httpx": {"bot/cloudify/"},
    "httpcore": {"bot/cloudify/"},
    "sqlite3": {"bot/store/"},
    "sqlite_utils": {"bot/store/"},
    "boto3": {"bot/archive/s3.py"},
    "botocore": {"bot/archive/s3.py"},
}
# what a command module may import from the bot: the kernel data, the errors, the spec and the seam
COMMANDS_MAY_USE = ("bot.core", "bot.errors", "bot.spec", "bot.engine.context")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the module it loads (first-party resolved to a module; third-party as written)
    line: int
    type_checking: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def imports_of(module: str, path: Path, source: str, known: set[str]) -> list[Import]:
    """Every import in `source`, resolved: `from a import b` is module a.b when that is a module, else a."""
    found: list[Import] = []

    def visit(node: ast.AST, guarded: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, guarded)
            return
        if isinstance(node, ast.Import):
            found.extend(Import(module, alias.name, node.lineno, guarded) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(module, path)
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                source_module = f"{base}.{node.module}" if node.module else base
            else:
                source_module = node.module or ""
            for alias in node.names:
                candidate = f"{source_module}.{alias.name}"
                found.append(Import(module, candidate if candidate in known else source_module, node.lineno, guarded))
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(ast.parse(source, str(path)), False)
    return found


def _all_imports() -> list[Import]:
    modules = _modules()
    known = set(modules)
    return [i for name, path in modules.items() for i in imports_of(name, path, path.read_text(), known)]


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _rel(module: str) -> str:
    return _modules()[module].relative_to(ROOT).as_posix()


# --- the resolver itself ---------------------------------------------------------------------------------------


def test_every_import_form_is_resolved() -> None:
    known = {"bot", "bot.recovery", "bot.recovery.incidents", "bot.core", "bot.engine", "bot.engine.context",
             "bot.engine.follow", "commands", "commands.audit"}
    source = """
import bot.core
import bot.engine.context as c
from bot.recovery import incidents
from bot import core
from bot.core import Reply
from . import follow
from .context import Ctx
from .. import core as kernel
def later():
    from bot.recovery import incidents
if TYPE_CHECKING:
    from commands import audit
"""
    got = {(i.target, i.type_checking) for i in imports_of("bot.engine.dispatch", ROOT / "bot/engine/dispatch.py",
                                                           source, known)}
    assert got == {("bot.core", False), ("bot.engine.context", False), ("bot.recovery.incidents", False),
                   ("bot.engine.follow", False), ("commands.audit", True)}


def test_every_module_is_seen() -> None:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    assert len(_modules()) == len(files) > 100
    assert {"bot", "bot.core", "bot.engine.context", "commands", "commands.deployments", "simulator.app"} <= set(
        _modules())


# --- the rules ----------------------------------------------------------------------------------------------------


def test_foreign_libraries_stay_in_their_module() -> None:
    bad = [f"{_rel(i.module)}:{i.line} imports {i.target}" for i in _all_imports()
           if (allowed := FOREIGN.get(i.target.split(".")[0])) is not None
           and not any(_rel(i.module).startswith(a) if a.endswith("/") else _rel(i.module) == a for a in allowed)]
    assert not bad, bad


def test_commands_use_only_the_seam() -> None:
    bad = []
    for i in _all_imports():
        if not _under(i.module, "commands"):
            continue
        top = i.target.split(".")[0]
        outside_seam = top == "bot" and not any(_under(i.target, allowed) for allowed in COMMANDS_MAY_USE)
        if outside_seam or top in ("simulator", *FOREIGN):
            bad.append(f"{_rel(i.module)}:{i.line} imports {i.target}")
    assert not bad, bad


SEAM = "bot.engine.context"


def seam_leaks(namespace: types.ModuleType) -> list[str]:
    """The names in `namespace.__all__` that are not a class or an alias of one (a function, a module, a value)."""
    bad = []
    for name in namespace.__all__:
        value = getattr(namespace, name)
        alias = typing.get_origin(value) is not None  # ChatPorts = Mapping[str, ChatPort]
        if not inspect.isclass(value) and not alias:
            bad.append(f"{name}: {type(value).__name__}")
    return bad


def seam_imports_not_offered(source: str, offered: set[str]) -> list[str]:
    """Imports in `source` that take from the seam a name it does not offer, or the seam module whole."""
    bad = []
    package, _, leaf = SEAM.rpartition(".")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == SEAM:
            bad += [f"{node.lineno} imports {a.name}" for a in node.names if a.name not in offered]
        elif (isinstance(node, ast.ImportFrom) and node.module == package and any(a.name == leaf for a in node.names)
              or isinstance(node, ast.Import) and any(_under(a.name, SEAM) for a in node.names)):
            bad.append(f"{node.lineno} imports the seam whole; name what it uses")
    return bad


def test_the_seam_checks_catch_what_they_are_for() -> None:
    fake = types.ModuleType("fake")
    fake.__dict__.update(__all__=["C", "A", "f", "m", "K"], C=int, A=dict[str, int], f=len, m=types, K=("failed",))
    assert seam_leaks(fake) == ["f: builtin_function_or_method", "m: module", "K: tuple"]
    source = ("from bot.engine.context import Ctx, running\nimport bot.engine.context as c\n"
              "from bot.engine import context\ndef later():\n    from bot.engine.context import RUNNING\n")
    assert seam_imports_not_offered(source, {"Ctx"}) == [
        "1 imports running", "2 imports the seam whole; name what it uses",
        "3 imports the seam whole; name what it uses", "5 imports RUNNING"]


def test_the_seam_offers_types_and_ports_only() -> None:
    """Everything the seam names is a class (a Protocol port, a dataclass, a StrEnum, an exception) or an alias of
    one: never a function, a module or a constant, through which a command could reach the rest of the bot."""
    bad = seam_leaks(importlib.import_module(SEAM))
    assert not bad, f"bot.engine.context's __all__ may name only types and ports: {bad}"


def test_commands_take_from_the_seam_only_what_it_offers() -> None:
    """`from bot.engine.context import X` in commands/: X is in its `__all__` (not `running`, `RUNNING`, ...)."""
    offered = set(importlib.import_module(SEAM).__all__)
    bad = [f"{_rel(module)}:{where}" for module, path in _modules().items() if _under(module, "commands")
           for where in seam_imports_not_offered(path.read_text(), offered)]
    assert not bad, bad


def test_the_bot_does_not_import_commands_except_to_register_them() -> None:
    """Only the front ends (bot/front/: wiring, the docs table) load the command modules."""
    bad = [f"{_rel(i.module)}:{i.line} imports {i.target}" for i in _all_imports()
           if _under(i.module, "bot") and _under(i.target, "commands") and not _under(i.module, "bot.front")]
    assert not bad, bad


def test_the_kernel_and_the_spec_stand_on_their_own() -> None:
    """bot/{core,errors,clock,redact,settings} import no other bot module than each other; bot/spec only those."""
    kernel = ("bot.core", "bot.errors", "bot.clock", "bot.redact", "bot.settings")
    bad = []
    for i in _all_imports():
        if not _under(i.target, "bot") or i.target == "bot":
            continue
        if i.module in kernel and i.target not in kernel:
            bad.append(f"{_rel(i.module)}:{i.line} imports {i.target}")
        if _under(i.module, "bot.spec") and not (i.target in kernel or _under(i.target, "bot.spec")):
            bad.append(f"{_rel(i.module)}:{i.line} imports {i.target}")
    assert not bad, bad


def test_the_simulator_is_self_contained() -> None:
    bad = [f"{_rel(i.module)}:{i.line} imports {i.target}" for i in _all_imports()
           if _under(i.module, "simulator") and i.target.split(".")[0] in ("bot", "commands", "httpx", "requests",
                                                                          "flask", *FOREIGN)]
    assert not bad, bad


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a module importing itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, ()):
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return out


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    """Module-level and function-level imports both count; only `if TYPE_CHECKING:` ones do not."""
    modules = set(_modules())
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for i in _all_imports():
        if not i.type_checking and i.target in modules and i.target != i.module:
            edges[i.module].add(i.target)
    assert _cycles(edges) == []


def test_no_module_level_slack_app_or_io() -> None:
    for path in [p for pkg in ("bot", "commands") for p in (ROOT / pkg).rglob("*.py")]:
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, (ast.Assign, ast.Expr)) and isinstance(getattr(node, "value", None), ast.Call):
                func = node.value.func
                name = getattr(func, "id", getattr(func, "attr", ""))
                assert name not in ("App", "open", "connect", "Store", "WebClient", "load_dotenv"), (
                    f"{path.name}: {name}() at import time")
