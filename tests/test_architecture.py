"""The dependency direction of ARCHITECTURE.md, enforced on the import statements of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ffasora"

# part -> parts of ours it may import (besides itself and the version in ffasora/__init__).
ALLOWED: dict[str, set[str]] = {
    "findings": set(),
    "simulate": {"findings"},
    "data": {"findings", "simulate", "io"},
    "io": set(),
    "models": set(),
    "runtime": {"models"},
    "diffusion": set(),
    "train": {"models", "diffusion", "data", "io", "config", "findings", "pipeline", "pipeline_variants"},
    "pipeline_variants": {"diffusion"},
    "pipeline": {"models", "runtime", "diffusion", "findings", "io", "pipeline_variants"},
    "evaluate": {"findings", "data", "pipeline", "simulate", "io", "models", "diffusion"},
    "review": {"io"},
    "demo": {"pipeline", "pipeline_variants", "findings", "simulate", "io"},
    "config": set(),
}


# Single modules a part may import from a part it otherwise may not: the WF-VAE's shape rules (torch-free)
# are asked by the data tools and the simulator, which must not load models.
ALSO_ALLOWED: dict[str, set[str]] = {
    "data": {"ffasora.models.vae_shapes"},
    "simulate": {"ffasora.models.vae_shapes"},
}


def _imports(path: Path) -> set[str]:
    """The ffasora modules a file imports (``from ffasora.x.y import z`` gives ``ffasora.x.y``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ffasora."):
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(a.name for a in node.names if a.name.startswith("ffasora."))
    return modules


def _part(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_imports_follow_the_dependency_direction(path: Path) -> None:
    part = _part(path)
    if part not in ALLOWED:
        return  # cli and the package root may import anything
    modules = _imports(path) - ALSO_ALLOWED.get(part, set())
    illegal = {m.split(".")[1] for m in modules} - ALLOWED[part] - {part}
    assert not illegal, f"{path.relative_to(PACKAGE)} ({part}) imports {sorted(illegal)}"


def test_there_is_no_utils_module() -> None:
    assert not [p for p in PACKAGE.rglob("*.py") if p.stem in {"utils", "helpers", "util"}]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _edges(path: Path) -> set[str]:
    """Modules of ours that ``path`` imports anywhere (function bodies too); ``from pkg import submodule``
    counts as importing the submodule, not the package."""
    edges: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ffasora"):
            submodules = {f"{node.module}.{a.name}" for a in node.names} & MODULES.keys()
            edges |= submodules or {node.module}
        elif isinstance(node, ast.Import):
            edges |= {a.name for a in node.names}
    return edges & MODULES.keys()


# Import cycles that exist today and have an owner removing them; anything else is a new cycle.
KNOWN_CYCLES: set[frozenset[str]] = set()


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module reachable from ``start`` through one import or more."""
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return seen


def test_no_new_import_cycles() -> None:
    graph = {name: _edges(path) for name, path in MODULES.items()}
    reach = {name: _reach(graph, name) for name in graph}
    cycles = {frozenset({m} | {n for n in reach[m] if m in reach[n]}) for m in graph if m in reach[m]}
    assert cycles <= KNOWN_CYCLES, sorted(sorted(c) for c in cycles - KNOWN_CYCLES)


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("__init__.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_package_init_files_only_export(path: Path) -> None:
    """A docstring, imports and ``__all__``: implementation lives in modules whose names say what it is."""
    for node in ast.parse(path.read_text()).body:
        docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        names = [getattr(t, "id", "") for t in node.targets] if isinstance(node, ast.Assign) else []
        exports = names in (["__all__"], ["__version__"])
        assert docstring or exports or isinstance(node, ast.Import | ast.ImportFrom), (
            f"{path.relative_to(PACKAGE)} line {node.lineno}: {type(node).__name__}"
        )


# Files whose ImportError fallbacks have an owner removing them (issue #16).
KNOWN_FALLBACKS: set[str] = set()


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_error_fallbacks_for_our_own_modules(path: Path) -> None:
    """``try: from ffasora.x import y / except ImportError`` hides a broken package behind other behaviour."""
    if str(path.relative_to(PACKAGE)) in KNOWN_FALLBACKS:
        return
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Try):
            continue
        ours = any(
            isinstance(n, ast.ImportFrom) and (n.module or "").startswith("ffasora")
            for stmt in node.body
            for n in ast.walk(stmt)
        )
        catches = {getattr(h.type, "id", "") for h in node.handlers}
        assert not (ours and catches & {"ImportError", "ModuleNotFoundError"}), f"line {node.lineno}"
