"""Code in the docs comes from files CI runs: a block headed ``# from examples/x.py``
must appear verbatim in that file, and every relative link must point at a file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
BLOCK = re.compile(r"```python\n# from (\S+)\n(.*?)```", re.DOTALL)
LINK = re.compile(r"\]\((?!https?://|#)([^)#]+)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_code_blocks_come_from_files_that_run(page: Path) -> None:
    for source, body in BLOCK.findall(page.read_text()):
        text = (ROOT / source).read_text()
        assert body.rstrip("\n") in text, f"{page.name}: block from {source} is out of date"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    missing = [link for link in LINK.findall(page.read_text()) if not (page.parent / link).exists()]
    assert not missing, f"{page.name}: broken links {missing}"
