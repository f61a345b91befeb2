"""Every code block in docs/*.md and README.md runs as written, or says why not.

Every fence carries a tag. A block tagged ``python``, ``bash``, ``sh``,
``shell`` or ``console`` is *runnable*: a test runs it (the page sweeps of
test_docs_pages.py, or a test of its own: README's "Use it" section and
docs/validation.md's examples in test_docs_readme_validation.py, two
docs/operations.md blocks in test_docs_served.py). A block that cannot run as
written — it starts a long-lived server, needs other hosts, Docker, an E2B
account, a certificate — carries an HTML comment on the line just before
its fence::

    <!-- not run: needs an E2B account (E2B_API_KEY) -->

(invisible when rendered). Output listings, command synopses with
``[options]`` and configuration files are fenced as ``text`` (or ``json``, ...)
and are not run. ``test_every_runnable_block_is_run_or_marked`` fails on a
runnable block that no test covers, so a new example cannot silently go
unrun. The block reader itself is tested here too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _docs_blocks import (  # noqa: E402
    ROOT,
    RUNNABLE,
    SHELL,
    Block,
    blocks,
    commands,
    covered_elsewhere,
    pages,
    readme_use_it,
)
from _docs_runs import (  # noqa: E402
    EXPECT,
    PYTHON_PAGES,
    SHELL_PAGES,
    SLOW_COMMANDS,
    page_commands,
)


def uncovered(block: Block) -> str | None:
    """Why no test runs ``block`` though it is runnable and unmarked (None: covered)."""
    if not block.lang:
        return f"{block.page}:{block.line}: a fence without a tag: tag it (python, bash, text, ...)"
    if block.lang not in RUNNABLE or block.not_run is not None or covered_elsewhere(block):
        return None
    if block.lang == "python" and block.page not in PYTHON_PAGES:
        return f"{block.page}:{block.line} python: add the page to PYTHON_PAGES"
    if block.lang in SHELL:
        commands(block)  # every line a plain swarmvar command
        if block.page not in SHELL_PAGES:
            return f"{block.page}:{block.line} {block.lang}: add the page to SHELL_PAGES"
    return None


def test_every_runnable_block_is_run_or_marked() -> None:
    missing = [why for page in pages() for block in blocks(page)
               if (why := uncovered(block)) is not None]
    assert not missing, missing


def test_an_unmarked_block_on_a_new_page_is_caught() -> None:
    assert uncovered(Block("docs/new.md", 3, "python", "print(1)\n", None)) is not None
    assert uncovered(Block("docs/new.md", 3, "bash", "swarmvar var\n", None)) is not None
    assert uncovered(Block("docs/new.md", 3, "python", "x\n", "needs a GPU cluster")) is None
    assert uncovered(Block("docs/new.md", 3, "text", "swarmvar var\n", None)) is None
    assert uncovered(Block("docs/new.md", 3, "", "swarmvar var\n", None)) is not None
    # README outside "Use it", "Use it" in a tag its test does not run, another validation block
    assert uncovered(Block("README.md", 3, "bash", "swarmvar var\n", None)) is not None
    (use_it,) = readme_use_it("bash")
    assert uncovered(use_it) is None
    assert uncovered(Block("README.md", use_it.line, "sh", use_it.code, None)) is not None
    assert uncovered(Block("docs/validation.md", 3, "python", "print(1)\n", None)) is not None
    with pytest.raises(AssertionError, match="not a swarmvar command"):
        uncovered(Block("docs/portfolio.md", 3, "sh", "curl http://x\n", None))


def test_slow_commands_are_still_in_the_docs() -> None:
    shown = {c.text for page in SHELL_PAGES for c in page_commands(page)}
    assert set(SLOW_COMMANDS) | set(EXPECT) <= shown, (set(SLOW_COMMANDS) | set(EXPECT)) - shown


def test_marked_blocks_say_why() -> None:
    for page in pages():
        for block in blocks(page):
            if block.not_run is not None:
                assert block.lang in RUNNABLE, (
                    f"{page}:{block.line}: a {block.lang} block is not run anyway: drop the mark")
                assert len(block.not_run) > 10, f"{page}:{block.line}: say why it is not run"


def test_the_block_reader_sees_marks_and_line_numbers(tmp_path: Path) -> None:
    found = blocks("docs/sandbox.md")
    first = next(b for b in found if b.lang == "python")
    text = (ROOT / "docs/sandbox.md").read_text(encoding="utf-8").split("\n")
    assert text[first.line - 2].startswith("```python") and text[first.line - 1] == \
        first.code.split("\n")[0]
    with pytest.raises(AssertionError, match="not a swarmvar command"):
        commands(Block("x.md", 1, "sh", "docker build .\n", None))
    assert commands(Block("x.md", 1, "sh", "swarmvar a \\\n  --b 1  # c\n", None))[0].args == \
        ("a", "--b", "1")
