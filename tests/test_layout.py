"""The house's layout: the pipeline's floors (pyproject.toml's import-linter contract) hold,
every import included — at a module's top or inside a function — and no module imports
another that imports it back."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import hydra_plugins.lstm_sweep_configs
import lstm_sweep

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [Path(lstm_sweep.__file__).parent, Path(hydra_plugins.lstm_sweep_configs.__file__).parents[1]]


def lint_imports(cwd: Path, src: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--no-logo",
            "--no-cache",
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(src), "PATH": ""},
    )


def test_no_module_imports_a_floor_above_its_own():
    proc = lint_imports(ROOT, ROOT / "src")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 kept, 0 broken" in proc.stdout


def test_the_contract_finds_an_upward_import_even_inside_a_function(tmp_path):
    """The same check on a copy of the code where the cells import the analysis."""
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    cells = tmp_path / "src" / "lstm_sweep" / "model" / "cells.py"
    cells.write_text(cells.read_text() + "\n\ndef upward():\n    from lstm_sweep.analysis import stats\n")
    proc = lint_imports(tmp_path, tmp_path / "src")
    assert proc.returncode == 1 and "0 kept, 1 broken" in proc.stdout, proc.stdout[-3000:] + proc.stderr
    assert "lstm_sweep.model.cells -> lstm_sweep.analysis.stats" in proc.stdout


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The modules of the house a file imports, at its top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.startswith(("lstm_sweep", "hydra_plugins"))}


def test_no_module_imports_another_that_imports_it_back():
    files = {module_name(p, package): p for package in PACKAGES for p in package.rglob("*.py")}
    graph = {name: {m for m in imports_of(path) if m in files and m != name} for name, path in files.items()}
    state = {}

    def visit(name, trail):
        if state.get(name) == "done":
            return
        assert state.get(name) != "open", "import circle: " + " -> ".join([*trail, name])
        state[name] = "open"
        for other in sorted(graph[name]):
            visit(other, [*trail, name])
        state[name] = "done"

    for name in sorted(graph):
        visit(name, [])
    assert len(files) > 40  # the walk saw the whole house
