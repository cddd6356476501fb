"""core/ must stay importable without Streamlit, so it can be wrapped in an API or a job later."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "core"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_core_never_imports_streamlit() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert files, "core/ has no Python files: the scan would prove nothing"
    offenders = {
        str(path.relative_to(CORE.parent)): sorted(
            name for name in imported_modules(path) if name.split(".")[0].startswith("streamlit")
        )
        for path in files
    }
    assert {path: names for path, names in offenders.items() if names} == {}
