"""The package map of docs/architecture.md: each package imports only the layers below it."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"golden_model", "runtime", "experiments", "rtl", "synth", "sim", "eqspike"}

#: What each package may import of the project (docs/architecture.md, "Map of the packages").
ALLOWED = {
    "golden_model": {"golden_model"},
    "runtime": {"runtime"},
    "experiments": {"experiments", "golden_model", "runtime"},
    "rtl": {"rtl", "golden_model"},
    "synth": {"synth", "golden_model", "rtl", "runtime", "experiments"},
    "sim": {"sim", "golden_model", "rtl", "synth", "runtime", "experiments"},
    "eqspike": PROJECT,
}


def _imports(path: Path, package: str):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:          # relative: inside the same package
                yield package, node.lineno
            elif node.module:
                yield node.module.split(".")[0], node.lineno


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_the_layers_below(package):
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for top, line in _imports(path, package):
            if top in PROJECT and top not in ALLOWED[package]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {top}")
    assert bad == []


def test_golden_model_never_imports_hdl_or_simulators():
    for path in (ROOT / "golden_model").rglob("*.py"):
        tops = {top for top, _ in _imports(path, "golden_model")}
        assert not tops & {"amaranth", "cocotb", "cocotb_tools", "ray"}, path
