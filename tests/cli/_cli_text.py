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


def with_config(args: list[str], toml: object = None) -> tuple[int, str]:
    """Run the CLI on ``args`` with ``toml`` as its config file (``SWARMVAR_CONFIG``; none:
    no file, whatever the environment names): its exit code and output, whitespace
    collapsed."""
    from typer.testing import CliRunner

    from swarmvar.cli import app

    env = {"SWARMVAR_CONFIG": "" if toml is None else str(toml)}
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, " ".join(result.output.split())


def write_toml(folder: object, text: str) -> object:
    """``text`` written as ``folder/swarmvar.toml``; its path."""
    from pathlib import Path

    path = Path(str(folder)) / "swarmvar.toml"
    path.write_text(text, encoding="utf-8")
    return path


def stub_serve(monkeypatch: object) -> dict[str, object]:
    """``uvicorn.run`` and serve's listen check stubbed (nothing listens); returns what was
    handed to uvicorn. The service's config variable is restored after the test."""
    import uvicorn

    import swarmvar.cli.serve as serve_mod
    from swarmvar.service.config import CONFIG_ENV

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: seen.update(k))  # type: ignore[attr-defined]
    monkeypatch.setattr(serve_mod, "_check_listen", lambda host, port: None)  # type: ignore[attr-defined]
    monkeypatch.setenv(CONFIG_ENV, "")  # type: ignore[attr-defined]
    return seen
