"""A demanding user's bad input that used to escape the CLI: each case is a usage error
(exit 2, one ``error``/``Error`` line naming the flag, no traceback) and, where the command
writes, nothing is started or recorded.

Every case here failed on the code before this file: an exception (exit 1, "this is a bug
in swarmvar"), silent acceptance (thousands of server processes, a canary check recorded
with an impossible threshold) or a documented form refused (``ledger show -1``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmvar.cli import build_app
from swarmvar.cli._common import max_processes

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import plain  # noqa: E402

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every `serve` case here must be refused before uvicorn starts: were a refusal to
    regress, the real uvicorn.run would serve forever (root binds --port 1) or start
    thousands of workers; this one fails the test instead."""
    import uvicorn

    def _refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"uvicorn.run was reached: {args} {kwargs}")

    monkeypatch.setattr(uvicorn, "run", _refuse)


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(build_app(), list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{args}: {result.exception!r}")  # no exception escapes (main() would say "a bug")
    return result.exit_code, plain(result.output)


def _returns(path: Path, rows: int = 60) -> Path:
    lines = ["date,A,B"] + [f"2000-{1 + i // 28:02d}-{1 + i % 28:02d},"
                            f"{0.01 * ((i % 7) - 3) / 3:.5f},{0.01 * ((i % 5) - 2) / 2:.5f}"
                            for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- swarmvar run ---------------------------------------------------------------------------

@pytest.mark.parametrize(("portfolio", "says"), [
    ({"p": {"weights": {"A": "abc"}}}, "weights['A'] is 'abc', not a number"),
    ({"p": {"weights": {"A": True}}}, "weights['A'] is True, not a number"),
    ({"p": {"positions": [1, 2]}}, "positions must map each asset to a number"),
])
def test_run_refuses_a_portfolio_that_is_not_numbers(portfolio: object, says: str,
                                                     tmp_path: Path) -> None:
    """Was: ValueError "could not convert string to float" (exit 1, a bug)."""
    book = tmp_path / "p.json"
    book.write_text(json.dumps(portfolio), encoding="utf-8")
    code, out = _cli("run", "--data", str(_returns(tmp_path / "r.csv")), "--portfolios",
                     str(book), "--agents", "nig", "--window", "30", "--beats", "1", "--quiet",
                     "--home", str(tmp_path / "home"))
    assert code == 2 and "--portfolios" in out and says in out, out
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize(("flag", "value", "says"), [
    ("--rate", "1e-300", "out of range"),  # was: OverflowError (exit 1)
    ("--rate", "inf", "out of range"),
    ("--workers", "99999", f"between 0 and {max_processes()}"),  # was: 99999 processes
    ("--idle-timeout", "nan", "not a time in seconds"),  # was: accepted
    ("--idle-timeout", "-1", "not a time in seconds"),
])
def test_run_refuses_nonsense_numbers_before_starting(flag: str, value: str, says: str,
                                                      tmp_path: Path) -> None:
    code, out = _cli("run", "--data", str(_returns(tmp_path / "r.csv")), "--agents", "nig",
                     "--window", "30", "--beats", "1", "--quiet", flag, value,
                     "--home", str(tmp_path / "home"))
    assert code == 2 and flag in out and says in out, out
    assert not (tmp_path / "home").exists()


# --- swarmvar serve (refused before uvicorn starts: nothing listens) ------------------------

def test_serve_refuses_a_flood_of_workers(tmp_path: Path) -> None:
    """Was: accepted; uvicorn started 99999 worker processes."""
    code, out = _cli("serve", "--workers", "99999", "--home", str(tmp_path / "h"))
    assert code == 2 and "--workers" in out and str(max_processes()) in out, out
    assert not (tmp_path / "h").exists()


def test_serve_refuses_a_damaged_key_file(tmp_path: Path) -> None:
    """Was: InvalidParameter escaped (exit 1, "a bug")."""
    keys = tmp_path / "keys.json"
    keys.write_text("", encoding="utf-8")
    code, out = _cli("serve", "--keys", str(keys), "--home", str(tmp_path / "h"),
                     "--port", "1")
    assert code == 2 and "--keys" in out and "unreadable" in out, out
    assert keys.read_text(encoding="utf-8") == ""


def test_serve_refuses_files_that_are_no_tls_pair(tmp_path: Path) -> None:
    """Was: ssl.SSLError "PEM lib" after start-up (exit 1, "a bug")."""
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("not a certificate\n", encoding="utf-8")
    key.write_text("not a key\n", encoding="utf-8")
    code, out = _cli("serve", "--certfile", str(cert), "--keyfile", str(key),
                     "--home", str(tmp_path / "h"), "--port", "1")
    assert code == 2 and "--certfile" in out and "not a PEM certificate" in out, out


@pytest.mark.parametrize("args", [["--seed", "-1"], ["--home", "FILE"]])
def test_serve_checks_seed_and_home(args: list[str], tmp_path: Path) -> None:
    """Was: a negative seed accepted; a file as --home an OSError from mkdir."""
    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    args = [str(afile) if a == "FILE" else a for a in args]
    home = [] if "--home" in args else ["--home", str(tmp_path / "h")]
    code, out = _cli("serve", *args, *home, "--port", "1")
    assert code == 2 and args[0] in out, out


# --- swarmvar keys ----------------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"", b"\x00\xa1binary", b"[1, 2"])
def test_keys_list_names_a_damaged_key_file(content: bytes, tmp_path: Path) -> None:
    """Was: InvalidParameter escaped `keys list` (exit 1, "a bug")."""
    keys = tmp_path / "api-keys.json"
    keys.write_bytes(content)
    code, out = _cli("keys", "list", "--keys", str(keys))
    assert code == 2 and "error:" in out and "unreadable" in out, out
    assert keys.read_bytes() == content


def test_keys_create_refuses_an_infinite_rate(tmp_path: Path) -> None:
    """Was: refused with "rate must be >= 0 ..., got inf" and no flag named (the check is
    KeyFile.create's own; the CLI names the flags)."""
    code, out = _cli("keys", "create", "--rate", "inf", "--home", str(tmp_path))
    assert code == 2 and "--rate" in out and "got inf" in out, out
    assert not (tmp_path / "api-keys.json").exists()


# --- swarmvar variants ------------------------------------------------------------------------

def _canary(home: Path) -> str:
    code, out = _cli("variants", "create", "nig", "--set", "prior_mean=0.0", "--home", str(home))
    assert code == 0, out
    variant = out.split()[1]
    code, out = _cli("variants", "canary", "start", variant, "--home", str(home))
    assert code == 0, out
    return variant


@pytest.mark.parametrize(("flag", "value"), [
    ("--min-success-rate", "2"), ("--min-success-rate", "nan"), ("--min-success-rate", "-1"),
    ("--max-latency-s", "-1"), ("--max-latency-s", "nan"),
])
def test_canary_check_refuses_an_impossible_threshold(flag: str, value: str,
                                                      tmp_path: Path) -> None:
    """Was: accepted; each call recorded a failed check (three rolled the canary back)."""
    variant = _canary(tmp_path)
    code, out = _cli("variants", "canary", "check", variant, flag, value,
                     "--home", str(tmp_path))
    assert code == 2 and flag in out, out
    code, out = _cli("variants", "canary", "status", variant, "--home", str(tmp_path))
    assert code == 0 and "0 passed / 0 failed checks" in out and " canary " in out, out


def test_canary_check_of_a_draft_prints_no_verdict_before_refusing(tmp_path: Path) -> None:
    """Was: "check failed: 0 records" printed, then "is draft, not in a canary"."""
    code, out = _cli("variants", "create", "nig", "--set", "prior_mean=0.0",
                     "--home", str(tmp_path))
    variant = out.split()[1]
    code, out = _cli("variants", "canary", "check", variant, "--home", str(tmp_path))
    assert code == 2 and "not in a canary" in out and "check failed" not in out, out


def test_create_refuses_a_parameter_set_twice(tmp_path: Path) -> None:
    """Was: the last --set silently won."""
    code, out = _cli("variants", "create", "nig", "--set", "prior_mean=0.1",
                     "--set", "prior_mean=0.2", "--home", str(tmp_path))
    assert code == 2 and "prior_mean is given twice" in out, out
    code, out = _cli("variants", "list", "--home", str(tmp_path))
    assert "no variants" in out, out


# --- swarmvar ledger --------------------------------------------------------------------------

def test_ledger_show_takes_the_negative_index_it_documents(tmp_path: Path) -> None:
    """Was: "No such option: -1" although the help says "negative: from the end"."""
    from swarmvar.ledger import Ledger

    with Ledger(tmp_path) as ledger:
        ledger.record_action("note", {"n": 1})
        ledger.record_action("note", {"n": 2})
    code, out = _cli("ledger", "show", "-1", "--home", str(tmp_path))
    assert code == 0 and json.loads(out)["data"]["details"] == {"n": 2}, out
    code, out = _cli("ledger", "show", "-9", "--home", str(tmp_path))
    assert code == 2 and "no entry -9" in out, out
    code, out = _cli("ledger", "prove", "-1", "--home", str(tmp_path))
    assert code == 2 and "leaf index -1" in out, out
    code, out = _cli("ledger", "show", "--home", str(tmp_path), "-2")
    assert code == 0 and json.loads(out)["data"]["details"] == {"n": 1}, out
    code, out = _cli("ledger", "consistency", "-1", "2", "--home", str(tmp_path))
    assert code == 2 and "tree size -1" in out, out  # the arguments keep their order
    code, out = _cli("ledger", "prove", "0", "--size", "-1", "--home", str(tmp_path))
    assert code == 2 and "tree size -1" in out, out  # an option's value stays its value


@pytest.mark.parametrize(("args", "typo"), [
    (["show", "--hme", "H"], "--hme"),
    (["show", "-1", "--hme", "H"], "--hme"),
    (["prove", "0", "--sise", "1", "--home", "H"], "--sise"),
    (["prove", "-1", "--sise", "1", "--home", "H"], "--sise"),
    (["consistency", "1", "2", "--hoem", "H"], "--hoem"),
])
def test_ledger_commands_name_a_mistyped_option(args: list[str], typo: str,
                                                tmp_path: Path) -> None:
    """Was (with negative indexes taken by ignoring unknown options): "Invalid value for
    'index'" or "unexpected extra argument(s)" instead of the option's name."""
    from swarmvar.ledger import Ledger

    with Ledger(tmp_path) as ledger:
        ledger.record_action("note", {"n": 1})
    args = [str(tmp_path) if a == "H" else a for a in args]
    code, out = _cli("ledger", *args)
    assert code == 2 and f"No such option: {typo}" in out, out
