"""Imports run one way: commands (cli, report, cache, train_worker) -> methods -> stages -> library."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {"synpo.cli", "synpo.__main__", "synpo.report", "synpo.cache", "synpo.train_worker"}


def _layer(module: str) -> int:
    if module in COMMANDS:
        return 3
    return 2 if module.startswith("synpo.methods") else 1 if module.startswith("synpo.stages") else 0


def _modules() -> dict[str, Path]:
    """{module name: file} of the package as installed (evaluation/ is synpo.evaluation)."""
    found = {}
    for path in [*(REPO / "synpo").rglob("*.py"), *(REPO / "evaluation").rglob("*.py")]:
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        parts = ["synpo", *parts] if parts[0] == "evaluation" else parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def test_no_module_imports_a_higher_layer():
    modules = _modules()
    upward = []
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            upward += [f"{module} -> {n}" for n in names if n in modules and _layer(n) > _layer(module)]
    assert not upward, upward
    assert "synpo.errors" in modules and "synpo.evaluation.alpaca" in modules
