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
    "train": {"models", "diffusion", "data", "io", "config", "findings"},
    "pipeline": {"models", "runtime", "diffusion", "findings", "io"},
    "evaluate": {"findings", "data", "pipeline", "simulate", "io", "models"},
    "review": {"io"},
    "config": set(),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    parts: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ffasora."):
            parts.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ffasora."):
                    parts.add(alias.name.split(".")[1])
    return parts


def _part(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_imports_follow_the_dependency_direction(path: Path) -> None:
    part = _part(path)
    if part not in ALLOWED:
        return  # cli and the package root may import anything
    illegal = _imports(path) - ALLOWED[part] - {part}
    assert not illegal, f"{path.relative_to(PACKAGE)} ({part}) imports {sorted(illegal)}"


def test_there_is_no_utils_module() -> None:
    assert not [p for p in PACKAGE.rglob("*.py") if p.stem in {"utils", "helpers", "util"}]
