"""The house's architecture rules, checked on the source of app/ and ui/ read with ast."""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGES = ("app", "ui")
QT = ("PySide6", "shiboken6", "PyQt5", "PyQt6")
STORE = "app.store"

# A whole string that names a console or Qt module (or an entry point in one): a way to load
# it by name (importlib, __import__, an EntryPoint) that no import statement shows.
CONSOLE_NAME = re.compile(rf"^(?:ui|{'|'.join(QT)})(?:\.\w+)*(?::[\w.]+)?$")

# SQL statements as they appear in string literals. Keywords are matched in capitals, as the
# store writes them, so that prose ("Select a recipient from the list") does not count.
SQL = re.compile(
    r"\bSELECT\b[\s\S]{1,300}?\bFROM\b"
    r"|\bINSERT\s+(?:OR\s+[A-Z]+\s+)?INTO\b"
    r"|\bREPLACE\s+INTO\b"
    r"|\bUPDATE\s+\w+\s+SET\b"
    r"|\bDELETE\s+FROM\b"
    r"|\b(?:CREATE|DROP)\s+(?:TEMP\w*\s+|UNIQUE\s+)?(?:TABLE|VIEW|INDEX|TRIGGER)\b"
    r"|\bALTER\s+TABLE\b"
    r"|\bPRAGMA\s+\w+"
    r"|\bBEGIN\s+(?:IMMEDIATE|EXCLUSIVE|DEFERRED)\b"
)
SQL_CALLS = ("execute", "executemany", "executescript")


@dataclass(frozen=True)
class Module:
    """One source file of app/ or ui/."""

    name: str
    path: Path
    is_package: bool
    tree: ast.Module

    @property
    def package(self) -> str:
        """The package a relative import in this module starts from."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


@dataclass(frozen=True)
class Import:
    """One place a module loads another: ``how`` is the statement or call that does it."""

    importer: str
    target: str
    line: int
    how: str


class Source:
    """The modules of app/ and ui/ under ``root``, and the imports each makes."""

    def __init__(self, root: Path, packages: tuple[str, ...] = PACKAGES) -> None:
        self.root = root
        self.modules: dict[str, Module] = {}
        for package in packages:
            for path in sorted((root / package).rglob("*.py")):
                parts = path.relative_to(root).with_suffix("").parts
                is_package = parts[-1] == "__init__"
                name = ".".join(parts[:-1] if is_package else parts)
                tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
                self.modules[name] = Module(name, path, is_package, tree)

    def where(self, module: str, line: int) -> str:
        return f"{self.modules[module].path.relative_to(self.root).as_posix()}:{line}"

    def imports(self, module: Module) -> Iterator[Import]:
        """Every import anywhere in the file: module level, in functions, under TYPE_CHECKING,
        and importlib.import_module / __import__ calls with a literal name.

        ``from pkg import name`` is an import of ``pkg.name`` when that is a module here.
        """
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(module.name, alias.name, node.lineno, f"import {alias.name}")
            elif isinstance(node, ast.ImportFrom):
                base = self._absolute(module, node.module, node.level)
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    if submodule in self.modules:
                        how = f"from {'.' * node.level}{node.module or ''} import {alias.name}"
                        yield Import(module.name, submodule, node.lineno, how)
                    else:
                        yield Import(module.name, base, node.lineno, ast.unparse(node))
            elif isinstance(node, ast.Call) and _is_import_call(node) and node.args:
                yield from self._dynamic(module, node)

    def _dynamic(self, module: Module, call: ast.Call) -> Iterator[Import]:
        first = call.args[0]
        how = f"{ast.unparse(call.func)}({ast.unparse(first)})"
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            name = first.value
            if name.startswith("."):
                level = len(name) - len(name.lstrip("."))
                name = self._absolute(module, name.lstrip(".") or None, level)
            yield Import(module.name, name, call.lineno, how)
        elif isinstance(first, ast.JoinedStr) and first.values:
            # f"app.cli.{name}": any module under the literal prefix may be the one loaded.
            head = first.values[0]
            if isinstance(head, ast.Constant) and isinstance(head.value, str):
                prefix = head.value
                yield Import(module.name, prefix.rstrip("."), call.lineno, how)
                for name in self.modules:
                    if name.startswith(prefix) and name != prefix:
                        yield Import(module.name, name, call.lineno, how)

    @staticmethod
    def _absolute(module: Module, name: str | None, level: int) -> str:
        if level == 0:
            return name or ""
        base = module.package.split(".")
        base = base[: len(base) - (level - 1)]
        return ".".join([*base, name] if name else base)

    def graph(self) -> dict[str, dict[str, Import]]:
        """Module -> the modules of app/ and ui/ it imports (the first place it does, each)."""
        edges: dict[str, dict[str, Import]] = {name: {} for name in self.modules}
        for module in self.modules.values():
            for found in self.imports(module):
                if found.target in self.modules and found.target != module.name:
                    edges[module.name].setdefault(found.target, found)
        return edges


def _is_import_call(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr in ("import_module", "__import__")


# --- rule a: no import cycles -------------------------------------------------------------------


def import_cycles(root: Path) -> list[str]:
    """Each group of modules that import each other in a loop, with one loop through it."""
    source = Source(root)
    graph = source.graph()
    found = []
    for group in _strongly_connected(graph):
        if len(group) < 2:
            continue
        loop = _shortest_loop(graph, min(group), group)
        steps = " -> ".join(
            f"{a} ({source.where(a, graph[a][b].line)})"
            for a, b in zip(loop, loop[1:], strict=False)
        )
        found.append(
            f"{len(group)} modules in a loop: {', '.join(sorted(group))}; "
            f"e.g. {steps} -> {loop[-1]}"
        )
    return sorted(found)


def _strongly_connected(graph: dict[str, dict[str, Import]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative (ui/ can be deep enough to hit the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    groups.append(group)
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return groups


def _shortest_loop(graph: dict[str, dict[str, Import]], start: str, group: set[str]) -> list[str]:
    """The shortest path start -> ... -> start inside the group (breadth first)."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child not in group:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if child not in came_from:
                    came_from[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{start} is in a loop without a path back to it")


# --- rule b: the engine never loads the console or Qt ------------------------------------------


def console_in_engine(root: Path) -> list[str]:
    """Each place in app/ that imports ui or Qt, or names such a module in a string."""
    source = Source(root)
    found = []
    for module in _modules_in(source, "app"):
        for each in source.imports(module):
            if each.target.split(".")[0] in ("ui", *QT):
                found.append(f"{source.where(module.name, each.line)}: {each.how}")
        for node in ast.walk(module.tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and CONSOLE_NAME.match(node.value.strip())
            ):
                found.append(f"{source.where(module.name, node.lineno)}: {node.value!r}")
    return sorted(set(found))


# --- rule c: the console uses the store only through its public names ---------------------------


def store_internals_in_console(root: Path) -> list[str]:
    """Each ui/ import of an app.store submodule or of a name app/store/__init__.py keeps."""
    source = Source(root)
    public = _public_names(source.modules[STORE]) if STORE in source.modules else set()
    found = []
    for module in _modules_in(source, "ui"):
        for each in source.imports(module):
            if each.target.startswith(f"{STORE}."):
                found.append(f"{source.where(module.name, each.line)}: {each.how}")
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == STORE:
                for alias in node.names:
                    if f"{STORE}.{alias.name}" not in source.modules and alias.name not in public:
                        where = source.where(module.name, node.lineno)
                        found.append(f"{where}: from {STORE} import {alias.name} (not public)")
    return sorted(set(found))


def _public_names(module: Module) -> set[str]:
    """``__all__`` when the module has one, else its top-level names without an underscore."""
    names: set[str] = set()
    for node in module.tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return set(ast.literal_eval(node.value))
        if isinstance(node, ast.ImportFrom | ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if not name.startswith("_")}


# --- rule d: SQL only in the store --------------------------------------------------------------


def sql_outside_store(root: Path) -> list[str]:
    """Each SQL statement in a string, cursor call or sqlite3 import in app/ or ui/ outside
    app/store/."""
    source = Source(root)
    found = []
    for module in source.modules.values():
        if module.name == STORE or module.name.startswith(f"{STORE}."):
            continue
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                match = SQL.search(node.value)
                if match:
                    statement = " ".join(match.group().split())
                    found.append(f"{source.where(module.name, node.lineno)}: SQL {statement!r}")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SQL_CALLS
            ):
                found.append(f"{source.where(module.name, node.lineno)}: .{node.func.attr}(...)")
        for each in source.imports(module):
            if each.target.split(".")[0] == "sqlite3":
                found.append(f"{source.where(module.name, each.line)}: {each.how}")
    return sorted(set(found))


def _modules_in(source: Source, package: str) -> list[Module]:
    return [
        module
        for name, module in source.modules.items()
        if name == package or name.startswith(f"{package}.")
    ]
