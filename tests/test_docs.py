"""Every ```python block in README.md and docs/ runs here, in order per file, so a doc that drifts fails."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text(encoding="utf-8"))


def test_there_are_docs_with_code() -> None:
    assert sum(len(blocks(p)) for p in FILES) >= 8


@pytest.mark.parametrize("path", [p for p in FILES if blocks(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_code_blocks_run(path: Path) -> None:
    if path.name == "scale.md":  # its example keeps DBOS's tables in SQLite
        dbos = pytest.importorskip("billkit.contrib.dbos")
        if dbos.sqlite_problem("sqlite:///"):
            pytest.skip(dbos.sqlite_problem("sqlite:///"))
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    for number, code in enumerate(blocks(path), 1):
        try:
            exec(compile(code, f"{path.name} block {number}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message is what matters
            raise AssertionError(f"{path.relative_to(ROOT)} block {number} failed: {exc!r}") from exc
