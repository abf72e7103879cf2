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
    "train": {"models", "diffusion", "data", "io", "config", "findings", "pipeline"},
    "pipeline": {"models", "runtime", "diffusion", "findings", "io"},
    "evaluate": {"findings", "data", "pipeline", "simulate", "io", "models"},
    "review": {"io"},
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
