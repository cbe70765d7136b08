"""The house (docs/ARCHITECTURE.md): no import cycles, lower layers never import higher ones, small
folders and modules, a docstring on every package, and `diffusellm --help` loads no model library."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "diffusellm"

# Lowest first. A module may import its own unit and any unit listed before it; settings modules are
# leaves every unit may import (config gathers them). Within `pipeline`, the phases in the order data
# flows, except that `validate` sits below `generate` (the generation loop validates its attempts).
LAYERS: list[tuple[str, ...]] = [
    ("errors", "log", "state"),
    ("models",),
    ("jobs",),
    ("pipeline.spec", "pipeline.paths", "pipeline.project", "pipeline.settings", "pipeline.workspace"),
    ("pipeline.understand",),
    ("pipeline.locate",),
    ("pipeline.operations",),
    ("pipeline.normalise",),
    ("pipeline.plan",),
    ("pipeline.validate",),
    ("pipeline.generate",),
    ("pipeline.deliver",),
    ("config", "repo_config"),
    ("pipeline.job", "pipeline.issue_plan", "pipeline.issue_job", "pipeline.runner"),
    ("forge",),
    ("learn",),
    ("worker",),
    ("app",),
    ("cli", "__main__"),
]
SETTINGS_LEAVES = frozenset(
    {
        "diffusellm.models.settings",
        "diffusellm.pipeline.settings",
        "diffusellm.pipeline.validate.settings",
        "diffusellm.forge.github_settings",
        "diffusellm.app.settings",
        "diffusellm.learn.settings",
    }
)
MODEL_LIBRARIES = ("torch", "transformers", "sentence_transformers", "chromadb", "xgrammar", "gguf", "peft")
MAX_MODULES_PER_FOLDER = 15
MAX_LINES_PER_MODULE = 500


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(module: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """Every diffusellm module `module` imports, at any depth of the file (function-level too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            if base in known:
                yield base
            yield from (f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known)


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {m: {d for d in _imported(m, p, known) if d != m} for m, p in known.items()}


def _layer(module: str) -> int:
    name = module.removeprefix("diffusellm.")
    best, rank = -1, -1
    for index, units in enumerate(LAYERS):
        for unit in units:
            if (name == unit or name.startswith(unit + ".")) and len(unit) > best:
                best, rank = len(unit), index
    return rank


def test_every_module_is_in_a_layer() -> None:
    unplaced = [m for m, path in _modules().items() if path.name != "__init__.py" and _layer(m) < 0]
    assert unplaced == []


def test_no_import_cycles() -> None:
    graph = _graph()
    seen: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for dep in sorted(graph[node]):
            if seen.get(dep) == 1:
                cycles.append(path[path.index(dep) :] + [dep])
            elif dep not in seen:
                visit(dep, [*path, dep])
        seen[node] = 2

    for module in sorted(graph):
        if module not in seen:
            visit(module, [module])
    assert cycles == []


def test_lower_layers_never_import_higher_ones() -> None:
    wrong = [
        f"{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})"
        for m, deps in _graph().items()
        for d in deps
        if d not in SETTINGS_LEAVES and _layer(d) > _layer(m)
    ]
    assert wrong == []


def test_settings_leaves_import_only_settings_and_errors() -> None:
    graph = _graph()
    wrong = {m: sorted(d for d in graph[m] if d not in SETTINGS_LEAVES and d != "diffusellm.errors")
             for m in SETTINGS_LEAVES}
    assert {m: deps for m, deps in wrong.items() if deps} == {}


def test_folders_and_modules_stay_small() -> None:
    crowded = {
        str(folder.relative_to(ROOT)): count
        for folder in [PACKAGE, *(p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__")]
        if (count := len([f for f in folder.glob("*.py") if f.name != "__init__.py"])) > MAX_MODULES_PER_FOLDER
    }
    long = {
        str(p.relative_to(ROOT)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES_PER_MODULE
    }
    assert (crowded, long) == ({}, {})


def test_every_package_says_what_it_takes_and_hands_on() -> None:
    missing = [
        str(init.relative_to(ROOT))
        for init in PACKAGE.rglob("__init__.py")
        if "migrations" not in init.parts and not ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
    ]
    assert missing == []


def test_architecture_doc_names_every_package() -> None:
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    packages = sorted(
        str(init.parent.relative_to(PACKAGE))
        for init in PACKAGE.rglob("__init__.py")
        if init.parent != PACKAGE and "migrations" not in init.parts
    )
    assert [p for p in packages if f"{p}/" not in doc] == []


def test_help_imports_no_model_library() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "diffusellm", "--help"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "diffusellm.cli.main" in imported
    assert sorted(m for m in imported if m.split(".")[0] in MODEL_LIBRARIES) == []
