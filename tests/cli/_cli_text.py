"""Helpers the CLI tests share (imported via ``sys.path``, as tests/mesh imports
``_mesh_harness``: with ``--import-mode=importlib`` test files cannot import each other)."""

from __future__ import annotations

#: ``swarmvar run``'s quick settings: three cheap agents, a short window, no live table.
RUN_FAST = ["--agents", "nig,bootstrap,student-t", "--window", "150", "--quiet"]


def plain(output: str) -> str:
    """The output without rich's error box, whitespace collapsed (messages wrap in the box)."""
    return " ".join(output.translate({ord(c): " " for c in "│╭╮╰╯─"}).split())


def invoke(*args: str) -> tuple[int, str]:
    """Run the CLI in-process on ``args``: its exit code and :func:`plain` output. An
    exception other than the exit itself fails the test (a traceback is never an answer)."""
    from typer.testing import CliRunner

    from swarmvar.cli import build_app

    result = CliRunner().invoke(build_app(), list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{args}: {result.exception!r}")
    return result.exit_code, plain(result.output)
