"""The shape of the code base itself: no agent probing, no Trainer attributes set from outside, files of one
idea (≤ 450 lines), imports that flow one way (runners -> reincarnation -> agents, runners -> envs; analysis
imports nothing of the runners) and no import circles."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "agents": "anew.agents",
    "envs": "anew.envs",
    "reincarnation": "anew.reincarnation",
    "runners": "anew.runners",
    "analysis": "anew.analysis",
    "anew_pkg": "anew",
}
# What each package may not import (docs/design.md section 1).
FORBIDDEN = {
    "anew.agents": ("anew.envs", "anew.runners", "anew.reincarnation", "anew.analysis"),
    "anew.envs": ("anew.agents", "anew.runners", "anew.reincarnation", "anew.analysis"),
    "anew.reincarnation": ("anew.runners", "anew.analysis", "anew.envs"),
    "anew.analysis": ("anew.runners", "anew.reincarnation", "anew.agents", "anew.envs"),
}
# getattr with a literal name that is not about an agent: (file, attribute) -> why it stays.
ALLOWED_GETATTR = {
    ("runners/registry.py", "signed_fields"): "an optional class-level list on config dataclasses",
    ("reincarnation/formats/safe_pickle.py", "name"): "a file object's name, for messages",
}


def python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT)
    package = PACKAGES[relative.parts[0]]
    rest = [part for part in relative.with_suffix("").parts[1:] if part != "__init__"]
    return ".".join([package, *rest])


def top_level_imports(path: Path) -> set[str]:
    """anew modules imported at module level (lazy imports inside functions are how cycles are avoided)."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.startswith("anew")}


def all_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return {name for name in names if name.startswith("anew")}


def test_no_agent_probing_in_runners_or_reincarnation() -> None:
    found = []
    for path in python_files("runners", "reincarnation"):
        relative = str(path.relative_to(ROOT))
        text = path.read_text()
        found += [f"{relative}: hasattr" for _ in re.finditer(r"\bhasattr\(", text)]
        for match in re.finditer(r"\bgetattr\([^,()]+,\s*[\"'](\w+)[\"']", text):
            if (relative, match.group(1)) not in ALLOWED_GETATTR:
                found.append(f"{relative}: getattr(..., {match.group(1)!r})")
    assert not found, "attribute probing (make it part of the contract instead):\n" + "\n".join(found)


def test_no_trainer_attribute_is_set_from_outside() -> None:
    pattern = re.compile(r"\btrainer\.\w+\s*=(?!=)")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in python_files("runners", "reincarnation", "benchmarks", "tests")
        if path.name != "train.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, f"Trainer attributes set from outside (pass them to the constructor): {found}"


def test_no_file_over_450_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in python_files(*PACKAGES, "tests", "benchmarks")
        if (n := len(p.read_text().splitlines())) > 450
    }
    assert not long, f"files over 450 lines (split them by idea): {long}"


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_flow_one_way(package: str) -> None:
    folder = next(f for f, name in PACKAGES.items() if name == package)
    wrong = {
        str(path.relative_to(ROOT)): sorted(
            name for name in all_imports(path) if name.startswith(FORBIDDEN[package])
        )
        for path in python_files(folder)
    }
    wrong = {file: names for file, names in wrong.items() if names}
    assert not wrong, f"{package} imports what it must not: {wrong}"


def test_no_import_circles() -> None:
    modules = {module_name(path): path for path in python_files(*PACKAGES)}
    graph = {
        name: {target for target in top_level_imports(path) if target in modules and target != name}
        for name, path in modules.items()
    }
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, f"import circles: {cycles}"


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["ruff-check", "ruff-format"])
def test_ruff_is_clean(command: list[str]) -> None:
    """CI's lint: `ruff check` and `ruff format --check` over the whole tree (settings in pyproject.toml)."""
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command, str(ROOT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
