"""The docs run as written.

Rules every page of ``docs/`` and ``README.md`` follows (and this file enforces):

* A ``python`` block headed ``# from <file>`` is an excerpt: it must appear verbatim in
  that file, which the suite runs (``tests/test_examples.py``, ``tests/test_graphs_dir.py``).
* A page that says ``<!-- docs: python blocks join into <file> -->`` teaches a file block
  by block: its Python blocks, joined in order by two blank lines, must be that file.
* Any other ``python`` block runs: all of a page's blocks are joined, in order, into one
  script that runs in a scratch directory holding the repository's files (a page with
  more than one block declares it with ``<!-- docs: python blocks run as one script -->``).
* Every command of a ``console`` block (lines starting ``$ ``) or ``sh`` block runs from a
  scratch directory that holds the repository's files, with the virtual environment's
  ``bin`` first on ``PATH``; it must exit 0, and each output line the page shows under a
  command must appear in what it printed (unless the block is marked
  ``<!-- docs: output varies -->``; ``...`` stands for lines left out).
* A block marked ``<!-- docs: fragment (why) -->`` on the line before it is not run; a
  Python fragment must still compile (top-level ``await`` allowed).
* Every relative link, and every repository path a page names in backticks, exists.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
IDS = [str(p.relative_to(ROOT)) for p in PAGES]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.DOTALL | re.MULTILINE)
MARK = re.compile(r"<!-- docs: (.*?) -->\s*$")
LINK = re.compile(r"\]\((?!https?://|#)([^)#]+)")
NAMED_PATH = re.compile(
    r"`((?:graphs|examples|docs|benchmarks|actorflow|tests)/[\w./-]+?\.(?:py|toml|json|md))"
)
SHELL = {"sh", "console", "shell", "bash"}
ONE_SCRIPT = "python blocks run as one script"
JOIN_INTO = re.compile(r"<!-- docs: python blocks join into (\S+) -->")


@dataclass(frozen=True)
class Block:
    """One fenced block: its language, its text, the mark before it, its line."""

    lang: str
    body: str
    mark: str
    line: int


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, with the ``<!-- docs: ... -->`` mark above it."""
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = MARK.search(before)
        found.append(
            Block(
                lang=match.group(1),
                body=match.group(2),
                mark=mark.group(1) if mark else "",
                line=text.count("\n", 0, match.start()) + 1,
            )
        )
    return found


def is_fragment(block: Block) -> bool:
    return block.mark.startswith("fragment")


def runnable_python(page: Path) -> list[Block]:
    return [
        b
        for b in blocks(page)
        if b.lang == "python" and not is_fragment(b) and not b.body.startswith("# from ")
    ]


def scratch_dir(tmp_path: Path) -> Path:
    """A directory holding the repository's files (linked) where commands may write."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    for entry in ROOT.iterdir():
        if entry.name not in {".git", "out"}:
            (tmp_path / entry.name).symlink_to(entry)
    venv = Path(sys.executable).parent.parent
    if not (tmp_path / ".venv").exists():
        (tmp_path / ".venv").symlink_to(venv)
    return tmp_path


def command_env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        "NO_COLOR": "1",
        "COLUMNS": "120",
    }


def commands(block: Block) -> list[tuple[str, list[str]]]:
    """``(command, output lines shown under it)`` for each command of a shell block."""
    found: list[tuple[str, list[str]]] = []
    for raw in block.body.splitlines():
        if block.lang == "console":
            if raw.startswith("$ "):
                found.append((raw[2:], []))
            elif found and raw.strip() and raw.strip() != "...":
                found[-1][1].append(raw.strip())
        elif raw.strip() and not raw.lstrip().startswith("#"):
            found.append((raw, []))
    return found


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_excerpts_come_from_files_that_run(page: Path) -> None:
    for block in blocks(page):
        if block.lang == "python" and block.body.startswith("# from "):
            source, _, body = block.body.partition("\n")
            text = (ROOT / source.removeprefix("# from ").strip()).read_text()
            assert body.rstrip("\n") in text, f"{page.name}:{block.line}: {source} is out of date"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_python_blocks_run_as_written(page: Path, tmp_path: Path) -> None:
    joined = JOIN_INTO.search(page.read_text())
    runnable = runnable_python(page)
    if joined:
        script = "\n\n\n".join(b.body.rstrip("\n") for b in runnable) + "\n"
        target = (ROOT / joined.group(1)).read_text()
        assert script == target, f"{page.name}: its Python blocks no longer make {joined.group(1)}"
        return  # tests/test_examples.py runs the file
    if not runnable:
        return
    if len(runnable) > 1:
        assert f"<!-- docs: {ONE_SCRIPT} -->" in page.read_text(), (
            f"{page.name}: {len(runnable)} Python blocks; say they run as one script"
        )
    cwd = scratch_dir(tmp_path)
    script = cwd / "page_blocks.py"
    script.write_text("\n".join(b.body for b in runnable))
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env=command_env(),
    )
    assert out.returncode == 0, f"{page.name}: its Python blocks failed:\n{out.stderr[-3000:]}"


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_python_fragments_compile(page: Path) -> None:
    for block in blocks(page):
        if block.lang == "python" and is_fragment(block):
            flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
            compile(textwrap.dedent(block.body), f"{page.name}:{block.line}", "exec", flags)


def shows(printed: str, line: str) -> bool:
    """Whether ``printed`` contains ``line``, ignoring white space; ``...`` matches anything."""
    text = "".join(printed.split())
    at = 0
    for piece in "".join(line.split()).split("..."):
        found = text.find(piece, at)
        if found < 0:
            return False
        at = found + len(piece)
    return True


@pytest.mark.timeout(300)
@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_shell_commands_run_as_written(page: Path, tmp_path: Path) -> None:
    """A page's commands run in order as in one terminal: a ``cd`` carries over."""
    shell = [b for b in blocks(page) if b.lang in SHELL and not is_fragment(b)]
    if not shell:
        return
    cwd = scratch_dir(tmp_path / "repo")
    state = tmp_path / "cwd"
    state.write_text(str(cwd))
    for block in shell:
        for command, shown in commands(block):
            script = f'cd "$(cat {state})"\n{command}\nrc=$?\npwd > {state}\nexit $rc\n'
            out = subprocess.run(
                ["bash", "-o", "pipefail", "-c", script],
                capture_output=True,
                text=True,
                timeout=180,
                cwd=cwd,
                env=command_env(),
            )
            where = f"{page.name}:{block.line}: `{command}`"
            assert out.returncode == 0, f"{where} exited {out.returncode}:\n{out.stderr[-3000:]}"
            if block.mark != "output varies":
                printed = out.stdout + out.stderr
                missing = [line for line in shown if not shows(printed, line)]
                assert not missing, f"{where} did not print {missing}; it printed:\n{printed}"


def test_output_matching_is_not_vacuous() -> None:
    assert shows("ok graphs/hello.toml: 3 units", "ok graphs/hello.toml: ... units")
    assert not shows("ok graphs/hello.toml: 3 units", "ok graphs/hello.toml: 4 units")
    assert not shows("units 3 ok", "ok ... units")


def test_every_block_is_run_or_marked() -> None:
    """Only the languages above are code a reader runs; others are data or text."""
    for page in PAGES:
        for block in blocks(page):
            assert block.lang in {*SHELL, "python", "text", "toml", "json"}, (
                f"{page.name}:{block.line}: fenced block without a known language"
            )
            if block.mark:
                marks = {"output varies", ONE_SCRIPT}
                known = block.mark.startswith("fragment (") or block.mark in marks
                assert known, f"{page.name}:{block.line}: unknown mark {block.mark!r}"


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_relative_links_resolve(page: Path) -> None:
    missing = [link for link in LINK.findall(page.read_text()) if not (page.parent / link).exists()]
    assert not missing, f"{page.name}: broken links {missing}"


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_named_files_exist(page: Path) -> None:
    named = set(NAMED_PATH.findall(page.read_text()))
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, f"{page.name}: names files that do not exist: {missing}"


def test_the_scratch_directory_isolates_writes(tmp_path: Path) -> None:
    """Commands that write files (``-o workflow.dot``) write into the scratch dir."""
    cwd = scratch_dir(tmp_path)
    subprocess.run(["bash", "-c", "echo x > written.txt"], check=True, cwd=cwd)
    assert (cwd / "written.txt").exists()
    assert not (ROOT / "written.txt").exists()
