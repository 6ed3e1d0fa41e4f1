"""The package's import graph: no circle, and each part imports only what the layout allows.

Read from the source with ``ast``: every import counts, at module level, under ``TYPE_CHECKING`` and
inside functions, and so do the optional backends ``guard.py`` names in its ``BACKENDS`` table.

    core/           -> core, errors, config                    (knows no capability)
    <capability>/   -> itself, core, errors, config            (cache, embedding, ratelimit, routing,
                                                                 streaming, observability)
    guard.py        -> everything but the faces (__init__, cli, the deprecated aliases)
    stores          -> no middleware and no layer base
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "asgi_llmguard"
SOURCE = Path(__file__).resolve().parent.parent / PACKAGE
CAPABILITIES = ("cache", "embedding", "ratelimit", "routing", "streaming", "observability")
BOTTOM = {f"{PACKAGE}.errors", f"{PACKAGE}.config"}
ALIASES = {"admin", "balancer", "cache_keys", "complexity", "dashboard", "embedding_server", "exchange", "indexsync",
           "logevent", "metrics", "observer", "openai_protocol", "proxy", "ratelimit_store", "remote_embedding",
           "requestlog", "router", "storage", "tokens", "tracing", "vectorindex", "verify", "_moved"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in SOURCE.rglob("*.py")}


def resolve(name: str) -> str | None:
    """The package's own module ``name`` stands for (the module itself or its nearest package)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> Iterator[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):  # every import: top level, TYPE_CHECKING blocks and function bodies alike
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        elif (isinstance(node, ast.AnnAssign) and module == f"{PACKAGE}.guard" and node.value is not None
              and isinstance(node.target, ast.Name) and node.target.id == "BACKENDS"):
            names = [v.value.partition(":")[0] for v in ast.walk(node.value)
                     if isinstance(v, ast.Constant) and isinstance(v.value, str) and ":" in v.value]
        else:
            continue
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                target = resolve(name)
                if target is not None and target != module:
                    yield target


GRAPH = {module: sorted(set(imports_of(module))) for module in MODULES}


def find_circle() -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in GRAPH[node]:
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (circle := visit(target)) is not None:
                return circle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(GRAPH):
        if node not in state and (circle := visit(node)) is not None:
            return circle
    return None


def part_of(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_the_graph_is_read() -> None:
    assert f"{PACKAGE}.core.exchange" in GRAPH[f"{PACKAGE}.core.layer"]  # a plain import
    assert f"{PACKAGE}.config" in GRAPH[f"{PACKAGE}.core.layer"]  # a TYPE_CHECKING import
    assert f"{PACKAGE}.core.tracing" in GRAPH[f"{PACKAGE}.cache.engine"]  # ``from ..core import tracing``
    assert f"{PACKAGE}.cache.stores.redis" in GRAPH[f"{PACKAGE}.guard"]  # a BACKENDS entry
    assert f"{PACKAGE}.observability.request_log" in GRAPH[f"{PACKAGE}.cli"]  # an import inside a function


def test_the_import_graph_has_no_circle() -> None:
    assert find_circle() is None, " -> ".join(find_circle() or [])


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if part_of(m) == "core"))
def test_the_core_imports_no_capability(module: str) -> None:
    outside = [t for t in GRAPH[module] if part_of(t) != "core" and t not in BOTTOM]
    assert outside == [], f"{module} imports {outside}"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if part_of(m) in CAPABILITIES))
def test_a_capability_imports_only_the_core_and_itself(module: str) -> None:
    own = part_of(module)
    outside = [t for t in GRAPH[module] if part_of(t) not in (own, "core") and t not in BOTTOM]
    assert outside == [], f"{module} imports {outside} (a layer is handed what it needs by guard.py)"


def test_only_the_faces_import_the_composition_root() -> None:
    importers = sorted(m for m, targets in GRAPH.items() if f"{PACKAGE}.guard" in targets)
    assert importers == [PACKAGE, f"{PACKAGE}.cli"]


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if ".stores" in m or m.endswith(".store")))
def test_storage_imports_no_middleware(module: str) -> None:
    above = [t for t in GRAPH[module] if t.endswith((".middleware", ".layer", ".admin", ".engine"))]
    assert above == [], f"{module} imports {above}"


def test_errors_and_config_sit_at_the_bottom() -> None:
    assert GRAPH[f"{PACKAGE}.errors"] == []
    assert GRAPH[f"{PACKAGE}.config"] == [f"{PACKAGE}.errors"]


def test_nothing_inside_imports_a_deprecated_alias() -> None:
    aliases = {m for m in GRAPH if part_of(m) in ALIASES}
    assert {f"{PACKAGE}.verify", f"{PACKAGE}.storage.redis", f"{PACKAGE}._moved"} <= aliases
    users = sorted((m, t) for m, targets in GRAPH.items() for t in targets
                   if t in aliases and m not in aliases and t != f"{PACKAGE}._moved")
    assert users == []


def test_the_library_never_imports_the_demo() -> None:
    for module, path in MODULES.items():
        assert "demo_app" not in {n.split(".")[0] for n in _absolute_imports(path)}, module


def _absolute_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module)
    return names
