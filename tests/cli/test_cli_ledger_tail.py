"""`swarmvar ledger tail N` as README writes it, and what `verify` says it cannot see."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from swarmvar.cli.ledger import app
from swarmvar.ledger import EntryKind, Ledger

runner = CliRunner()


def _home(tmp_path: Path, n: int = 6) -> Path:
    home = tmp_path / "home"
    with Ledger(home) as led:
        for i in range(n):
            led.add_entry(EntryKind.ESTIMATE, {"agent": f"a{i}", "var": 0.01 + i / 100})
    return home


def _indices(output: str) -> list[int]:
    return [json.loads(line)["index"] for line in output.splitlines() if line.strip()]


def test_tail_takes_the_count_as_a_word_or_as_n(tmp_path: Path) -> None:
    home = str(_home(tmp_path))
    word = runner.invoke(app, ["tail", "3", "--home", home])
    option = runner.invoke(app, ["tail", "-n", "3", "--home", home])
    assert word.exit_code == 0 and option.exit_code == 0, (word.output, option.output)
    assert _indices(word.output) == _indices(option.output) == [4, 5, 6]
    default = runner.invoke(app, ["tail", "--home", home])
    assert _indices(default.output) == list(range(7))  # 10 asked, 7 stored (with genesis)


def test_tail_refuses_two_different_counts(tmp_path: Path) -> None:
    home = str(_home(tmp_path))
    both = runner.invoke(app, ["tail", "3", "-n", "2", "--home", home])
    assert both.exit_code == 2 and "give the count once" in both.output
    for bad in ("0", "x"):
        assert runner.invoke(app, ["tail", bad, "--home", home]).exit_code == 2


def test_verify_says_a_cut_end_needs_a_signed_head(tmp_path: Path) -> None:
    home = _home(tmp_path)
    ok = runner.invoke(app, ["verify", "--home", str(home)])
    assert ok.exit_code == 0 and "ok: 7 entries verify" in ok.output
    assert "--against head.json" in ok.output
    head = runner.invoke(app, ["head", "--home", str(home)])
    assert head.exit_code == 0, head.output
    (tmp_path / "head.json").write_text(head.output, encoding="utf-8")
    against = runner.invoke(app, ["verify", "--home", str(home), "--against",
                                  str(tmp_path / "head.json")])
    assert against.exit_code == 0 and "--against head.json" not in against.output
