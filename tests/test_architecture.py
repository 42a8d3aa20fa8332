"""The import graph points down (docs/architecture.md): parsed with ``ast``, so every import counts — module level,
inside functions and under ``TYPE_CHECKING`` alike."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "mrdiff_cli"

# higher imports lower, never the other way; equal ranks are siblings and do not import each other
RANK = {
    "cli": 7,
    "tasks": 6,
    "samplers": 5,
    "priors": 4,
    "io": 3,
    "ops": 2,
    "metrics": 2,
    "types": 1,
    "errors": 0,
    "__init__": -1,  # mrdiff_cli/__init__.py: the version string
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_module(dotted: str) -> bool:
    p = ROOT.joinpath(*dotted.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def _layer(dotted: str) -> str:
    parts = dotted.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported mrdiff_cli module) for every import statement of ``path``."""
    mod = _module_name(path).split(".")
    package = mod if path.name == "__init__.py" else mod[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "mrdiff_cli"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "mrdiff_cli":
                target = node.module
            else:
                continue
            for a in node.names:  # `from . import x` imports the module x when there is one
                sub = f"{target}.{a.name}"
                out.append((node.lineno, sub if _is_module(sub) else target))
    return out


FILES = sorted(PKG.rglob("*.py"))


def test_every_package_has_a_rank():
    layers = {_layer(_module_name(f)) for f in FILES}
    assert layers <= set(RANK), f"new package(s) {sorted(layers - set(RANK))}: give them a layer here and in docs/architecture.md"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    me = _layer(_module_name(path))
    bad = [f"line {line}: {target} ({_layer(target)})" for line, target in _imports(path)
           if _layer(target) != me and RANK[_layer(target)] >= RANK[me]]
    assert not bad, f"{path.relative_to(ROOT)} ({me}) imports a layer at or above its own: {bad}"


def test_ops_and_samplers_know_no_files():
    """DESIGN: ops and samplers never import cli or io (they work on tensors; readers and writers are tasks' job)."""
    for sub in ("ops", "samplers"):
        for f in sorted((PKG / sub).rglob("*.py")):
            assert not [t for _, t in _imports(f) if _layer(t) in ("cli", "io")], f


def test_architecture_doc_names_every_package():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    for layer in RANK:
        if layer != "__init__":
            assert f"`{layer}" in doc, f"docs/architecture.md does not name `{layer}`"


def test_cli_start_imports_neither_torch_nor_numpy():
    """`mrdiff --help` stays fast: importing the CLI loads no torch (nor numpy)."""
    code = "import sys, mrdiff_cli.cli.main; print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout
