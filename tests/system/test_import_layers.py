"""The import layering the README draws: provider I/O only in providers/, the sandbox only where it is started."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.support import ROOT

ENTRY_POINTS = ("agents.worker", "sinks.runner", "app.api", "app.stack", "app.worker_processes", "app.cli", "app.demo")
_SANDBOX_LOADED = f"""
import sys
import {", ".join(ENTRY_POINTS)}
print(" ".join(sorted(m for m in sys.modules if m.startswith("providers.sandbox"))))
"""


def _imported(path: Path) -> Iterator[str]:
    """Every absolute module name the file imports, at any depth (a lazy import counts too)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def _importers(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}: {module}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for module in _imported(path)
        if module.split(".")[0] in forbidden
    ]


def test_production_entry_points_do_not_load_the_sandbox():
    loaded = subprocess.run([sys.executable, "-c", _SANDBOX_LOADED], capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == []


def test_agents_do_no_provider_io_of_their_own():
    # HTTP clients and model SDKs belong to providers/; a flow calls a provider module.
    assert _importers("agents", ("httpx", "openai")) == []


def test_providers_import_no_layer_above_them():
    assert _importers("providers", ("agents", "sinks", "app")) == []
