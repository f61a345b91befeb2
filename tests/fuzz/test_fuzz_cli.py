"""Property: every command line of ``var``, ``backtest`` and ``config`` ends in a result
(exit 0) or a usage error with a message (exit 2) - never a traceback, never exit 1 from
a crash. Work is kept small (one fast agent, short series) so examples stay cheap; the
flags under test get valid, boundary and garbage values alike.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from swarmvar.cli import app

runner = CliRunner()

GARBAGE = st.sampled_from(["", " ", ",", "abc", "nan", "inf", "-inf", "-1", "0", "1e3",
                           "99999999999999999999999", "-99999999999999999999", "0x10", "1.5",
                           "é", "\x00", "--", "None"])
INTS = st.one_of(st.integers(-5, 400).map(str), GARBAGE)
ALPHAS = st.one_of(st.lists(st.sampled_from(["0.99", "0.975", "0.95", "1", "0", "-0.5", "abc",
                                             "", "nan", "0.99"]), min_size=1, max_size=3)
                   .map(",".join), GARBAGE)
AGENTS = st.one_of(st.sampled_from(["nig", "bootstrap", "nig,bootstrap", "NIG", "bb",
                                    "nig,nig", "nug", "", ",", " , ", "oracle", "nig,,bb"]),
                   GARBAGE)
DATA = st.sampled_from(["sp500", "nasdaq", "SP500", "sp5OO", "nope", "missing.csv", "dir",
                        "empty.csv", "garbage.csv", "prices.csv", ""])


def _files(folder: Path) -> None:
    (folder / "dir").mkdir()
    (folder / "empty.csv").write_text("")
    (folder / "garbage.csv").write_bytes(b"\x00\xff\xfe binary \x89PNG")
    lines = ["date,close"] + [f"2020-01-{d:02d},{100 + d}" for d in range(1, 29)]
    (folder / "prices.csv").write_text("\n".join(lines) + "\n")


def _check(args: list[str], folder: Path) -> None:
    result = runner.invoke(app, args, catch_exceptions=True)
    assert "Traceback" not in result.output, (args, result.output)
    if result.exit_code == 2:
        assert result.output.strip(), args  # a message says what to fix
        return
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args, repr(result.exception))
    assert result.exit_code == 0, (args, result.exit_code, result.output)


def _resolve(value: str, folder: Path) -> str:
    return str(folder / value) if value in {"missing.csv", "dir", "empty.csv", "garbage.csv",
                                            "prices.csv"} else value


#: Valid command lines (cheap: one or two fast agents, short series); the test swaps
#: in fuzzed values for up to three flags at a time.
VAR_BASE = {"--data": "sp500", "--alpha": "0.99", "--horizon": "1", "--agents": "nig",
            "--last": "300", "--seed": "0", "--kind": "price", "--track-days": "0"}
BACKTEST_BASE = {"--data": "sp500", "--alpha": "0.99", "--horizon": "1", "--agents": "nig",
                 "--last": "30", "--window": "250", "--refit-every": "15", "--seed": "0"}
FUZZ = {"--data": DATA, "--alpha": ALPHAS, "--horizon": INTS, "--agents": AGENTS,
        "--last": INTS, "--seed": INTS, "--kind": st.sampled_from(["price", "return", "x", ""]),
        "--track-days": INTS, "--window": INTS, "--refit-every": INTS,
        "--notional": st.one_of(GARBAGE, st.sampled_from(["1e6", "2.5e3"])),
        "--workers": INTS,
        "--policy": st.sampled_from(["median", "krum", "Trimmed-Mean", "mean", "medain", ""])}


def _command(draw: st.DataObject, base: dict[str, str], folder: Path) -> list[str]:
    flags = draw.draw(st.lists(st.sampled_from(sorted(set(base) | {"--notional", "--workers",
                                                                 "--policy"})),
                               max_size=3, unique=True))
    values = dict(base)
    for flag in flags:
        values[flag] = _resolve(draw.draw(FUZZ[flag]), folder)
    if values.get("--workers") not in (None, "1"):
        values["--workers"] = "1"  # processes are not what is fuzzed here
    return [part for flag, value in values.items() for part in (flag, value)]


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(draw=st.data(), home_is_file=st.booleans(),
       extra=st.sampled_from([[], ["--dropna"], ["--json"], ["--quiet"], ["--no-consensus"]]))
def test_var_command_lines(draw: st.DataObject, home_is_file: bool, extra: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _files(folder)
        home = folder / "home"
        if home_is_file:
            home.write_text("not a directory")
        _check(["var", *_command(draw, VAR_BASE, folder), "--home", str(home), *extra], folder)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(draw=st.data(),
       plot=st.sampled_from([None, "x.png", "x.xyz", "x", "sub/x.svg", "dir"]),
       report=st.sampled_from([None, "r.html", "dir", "sub/r.html"]),
       extra=st.sampled_from([[], ["--json"], ["--quiet"], ["--no-consensus"]]))
def test_backtest_command_lines(draw: st.DataObject, plot: str | None, report: str | None,
                                extra: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _files(folder)
        args = ["backtest", *_command(draw, BACKTEST_BASE, folder),
                "--home", str(folder / "home"), "--no-baseline", "--no-record",
                "--no-progress", *extra]
        if plot is not None:
            args += ["--plot", str(folder / plot)]
        if report is not None:
            args += ["--report", str(folder / report)]
        _check(args, folder)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(text=st.text(max_size=60), use_pyproject=st.booleans())
def test_config_files_are_read_or_refused(text: str, use_pyproject: bool) -> None:
    import os

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        name = "pyproject.toml" if use_pyproject else "swarmvar.toml"
        body = f"[tool.swarmvar]\n{text}" if use_pyproject else text
        (folder / name).write_text(body, encoding="utf-8", errors="surrogatepass")
        old = Path.cwd()
        os.chdir(folder)
        try:
            _check(["config", "show"], folder)
        finally:
            os.chdir(old)
