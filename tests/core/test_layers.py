"""The import rules of docs/architecture.md, checked on the source (every import, lazy or not).

A module imports only from layers below it; engines import each other only
along the listed edges; faces never import each other, except the CLI, which
launches the others inside its commands.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "swarmvar"

LAYER = {
    "types": 0, "errors": 0, "canonical": 0,
    "data": 1, "books": 1, "datasets": 1, "storerules": 1,
    "models": 2, "validation": 2, "consensus": 2, "emergence": 2, "ledger": 2,
    "evolution": 2, "sandbox": 2,
    "swarm": 3, "arbiter": 3,
    "cli": 4, "service": 4, "mesh": 4, "api": 4, "book_api": 4, "config": 4,
}
#: Engine -> engine imports the map allows.
ENGINE_EDGES = {("validation", "models"), ("validation", "consensus"),
                ("emergence", "validation"), ("emergence", "consensus")}
#: Runtime -> runtime: the arbiter reads the swarm's policy; the swarm never imports the
#: arbiter (it is an observer handed in by the caller).
RUNTIME_EDGES = {("arbiter", "swarm")}
#: Faces that may launch other faces (inside their commands).
LAUNCHERS = {"cli"}
#: Face-layer modules that are libraries the faces build on (the Python API, config).
FACE_LIBRARIES = {"api", "book_api", "config"}


def _package(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py") if rel.parts else ""


def _targets(path: Path) -> set[str]:
    """Top-level swarmvar packages a module imports (absolute or relative, anywhere)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    depth = len(path.relative_to(SRC).parts) - 1  # folders below swarmvar/
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "swarmvar" and len(parts) > 1:
                    out.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] == "swarmvar":
                    if len(parts) > 1:
                        out.add(parts[1])
                    else:
                        out.update(a.name for a in node.names)
            elif node.level == depth + 1:  # up to swarmvar/
                if node.module:
                    out.add(node.module.split(".")[0])
                else:
                    out.update(a.name for a in node.names)
    return {t for t in out if t in LAYER}


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if _package(p) in LAYER)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_the_layers(path: Path) -> None:
    here = _package(path)
    bad = []
    for target in _targets(path) - {here}:
        mine, theirs = LAYER[here], LAYER[target]
        if theirs < mine:
            continue
        if mine == theirs and mine in (0, 1):  # e.g. types -> errors, books -> data
            continue
        if mine == theirs == 2 and (here, target) in ENGINE_EDGES:
            continue
        if mine == theirs == 3 and (here, target) in RUNTIME_EDGES:
            continue
        if mine == theirs == 4 and (here in LAUNCHERS or target in FACE_LIBRARIES):
            continue
        bad.append(target)
    assert not bad, f"{path.relative_to(SRC)} ({here}, layer {LAYER[here]}) imports {bad}"


def test_every_package_has_a_layer() -> None:
    found = {p.name.removesuffix(".py") for p in SRC.iterdir()
             if (p.is_dir() and (p / "__init__.py").exists()) or
             (p.suffix == ".py" and p.name != "__init__.py")}
    assert found <= set(LAYER), f"no layer for {sorted(found - set(LAYER))}"
