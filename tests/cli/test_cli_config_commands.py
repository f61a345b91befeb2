"""``swarmvar.toml`` for ``run`` and ``serve`` too: flag > file > built-in default, a file's
value checked against its flag's bounds and named as the file's key (exit 2), a resume
refused over a setting the file changed naming the file's key, and ``config show``
saying which commands read each key."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmvar.cli import app

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import stub_serve
from _cli_text import with_config as _cli  # noqa: E402
from _cli_text import write_toml as _toml

# --- config show ----------------------------------------------------------------------------

def test_config_show_says_which_commands_read_each_key(tmp_path: Path) -> None:
    from swarmvar.config import APPLIES, DEFAULTS

    assert set(APPLIES) == set(DEFAULTS)
    toml = _toml(tmp_path, 'window = 500\nhome = "/srv/risk"\n')
    code, out = _cli(["config", "show", "--json"], toml)
    assert code == 0, out
    doc = json.loads(out)["settings"]
    assert doc["window"] == {"value": 500, "source": str(toml),
                             "commands": ["backtest", "run", "serve"]}
    assert doc["home"]["commands"] == ["var", "backtest", "run", "serve"]
    assert "run" not in doc["last"]["commands"] and "serve" not in doc["data"]["commands"]
    code, out = _cli(["config", "show"], toml)
    assert code == 0 and "commands" in out and "backtest, run, serve" in out, out


@pytest.mark.parametrize("text", ["port = 8080\n", "[serve]\nport = 8080\n"])
def test_serve_only_settings_have_no_key(tmp_path: Path, text: str) -> None:
    """Host, port and the request caps are the deployment's flags, not the file's."""
    toml = _toml(tmp_path, text)
    code, out = _cli(["config", "show"], toml)
    assert code == 2 and "unknown setting" in out and "Known: home, data" in out, out


# --- run ------------------------------------------------------------------------------------

def test_run_reads_the_file_and_a_resume_names_the_files_key(tmp_path: Path) -> None:
    home = tmp_path / "risk"
    toml = _toml(tmp_path, f'home = "{home}"\nagents = ["nig"]\nalphas = [0.99]\n'
                           'window = 60\nrefit_every = 5\n')
    code, out = _cli(["run", "--beats", "2", "--quiet"], toml)
    assert code == 0 and "sp500 at beat 2" in out, out
    assert (home / "ledger.sqlite").is_file()  # the file's home, not ./.swarmvar
    # the file changes a fingerprinted setting: the resume is refused, in the file's words
    _toml(tmp_path, f'home = "{home}"\nagents = ["nig"]\nalphas = [0.99]\n'
                    'window = 80\nrefit_every = 5\n')
    code, out = _cli(["run", "--beats", "2", "--quiet"], toml)
    assert code == 2 and "window: saved 60, now 80" in out, out
    assert f"window = 80 in {toml}" in out and f'{toml}: home = "{home}"' in out, out
    assert "--window" not in out, out
    # a flag wins over the file: the saved window, given as a flag, resumes
    code, out = _cli(["run", "--beats", "2", "--quiet", "--window", "60"], toml)
    assert code == 0 and "sp500 at beat 4" in out, out
    # a flag that changes one: named as the flag
    code, out = _cli(["run", "--beats", "2", "--quiet", "--window", "60", "--refit-every",
                      "6"], toml)
    assert code == 2 and "--refit-every: saved 5, now 6" in out, out


@pytest.mark.parametrize(("line", "words"), [
    ("window = 10", "window = 10: 10 is out of range; it must be at least 30"),
    ("horizon = 999", "horizon = 999: 999 is out of range; it must be between 1 and 250"),
    ('agents = ["garchh"]', "agents = [\"garchh\"]: no agent called 'garchh'"),
])
def test_run_checks_a_files_value_against_its_flags_bounds(tmp_path: Path, line: str,
                                                           words: str) -> None:
    home = tmp_path / "home"
    toml = _toml(tmp_path, f'home = "{home}"\n{line}\n')
    code, out = _cli(["run", "--beats", "1", "--quiet"], toml)
    assert code == 2 and f"{toml}: {words}" in out, out
    key = line.split(" ", 1)[0]
    assert f"--{key.rstrip('s')}" not in out, out
    assert not home.exists()


def test_a_refit_lag_beyond_the_files_refit_every_names_the_file(tmp_path: Path) -> None:
    toml = _toml(tmp_path, f'home = "{tmp_path / "h"}"\nrefit_every = 4\n')
    code, out = _cli(["run", "--refit-lag", "9", "--quiet"], toml)
    assert code == 2 and "--refit-lag 9 is longer than refit_every 4" in out, out
    assert f"(refit_every = 4 in {toml})" in out and "--refit-every" not in out, out
    assert not (tmp_path / "h").exists()


def test_run_takes_the_files_policy_and_horizon(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import swarmvar.swarm as swarm_mod

    seen: dict[str, object] = {}

    class Stop(Exception):
        pass

    def capture(*args: object, **kwargs: object) -> None:
        seen.update(kwargs)
        raise Stop

    capture.check_start_history = swarm_mod.Swarm.check_start_history  # type: ignore[attr-defined]
    monkeypatch.setattr(swarm_mod, "Swarm", capture)
    toml = _toml(tmp_path, f'home = "{tmp_path / "h"}"\npolicy = "median"\nhorizon = 5\n'
                           'agents = ["nig", "bootstrap", "student-t"]\n')
    result = CliRunner().invoke(app, ["run", "--quiet"], env={"SWARMVAR_CONFIG": str(toml)})
    assert isinstance(result.exception, Stop), result.output
    assert seen["horizon"] == 5 and seen["agents"] == ["NormalInverseGamma", "BayesianBootstrap",
                                                       "StudentT"], seen
    assert seen["policy"].aggregator.value == "median", seen["policy"]  # type: ignore[attr-defined]
    assert seen["home"] == tmp_path / "h"
    result = CliRunner().invoke(app, ["run", "--quiet", "--horizon", "2", "--policy",
                                      "geometric_median"], env={"SWARMVAR_CONFIG": str(toml)})
    assert seen["horizon"] == 2, seen
    assert seen["policy"].aggregator.value == "geometric_median", seen  # type: ignore[attr-defined]


# --- serve ----------------------------------------------------------------------------------

@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """uvicorn.run and the listen check stubbed: nothing listens; what was handed over."""
    return stub_serve(monkeypatch)


def test_serve_reads_the_file_and_a_flag_wins(tmp_path: Path, served: dict[str, object]
                                             ) -> None:
    from swarmvar.service.config import ServiceConfig

    home = tmp_path / "risk"
    toml = _toml(tmp_path, f'home = "{home}"\nagents = ["nig", "garch-evt"]\n'
                           'alphas = [0.975]\nwindow = 500\nrefit_every = 7\n'
                           'data = "nasdaq"\nlast = 10\n')  # keys serve leaves aside
    code, out = _cli(["serve"], toml)
    assert code == 0, out
    cfg = ServiceConfig.from_env()
    assert cfg.home == home and cfg.agents == ("NormalInverseGamma", "GarchEVT"), cfg
    assert cfg.alphas == (0.975,) and cfg.window == 500 and cfg.refit_every == 7, cfg
    code, out = _cli(["serve", "--window", "300", "--agents", "nig", "--home",
                      str(tmp_path / "other")], toml)
    assert code == 0, out
    cfg = ServiceConfig.from_env()
    assert cfg.window == 300 and cfg.agents == ("NormalInverseGamma",), cfg
    assert cfg.home == tmp_path / "other" and cfg.refit_every == 7, cfg


def test_serve_without_a_file_keeps_its_own_defaults(tmp_path: Path,
                                                     served: dict[str, object],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmvar.cli.serve import SERVE_AGENTS
    from swarmvar.service.config import ServiceConfig

    monkeypatch.chdir(tmp_path)  # no swarmvar.toml here
    code, out = _cli(["serve", "--home", str(tmp_path / "h")])
    assert code == 0, out
    cfg = ServiceConfig.from_env()
    assert cfg.agents == SERVE_AGENTS and cfg.alphas == (0.99, 0.975), cfg
    assert cfg.window == 1000 and cfg.refit_every == 20, cfg


@pytest.mark.parametrize(("line", "words"), [
    ("window = 20", "window = 20: 20 is out of range; it must be at least"),
    ("refit_every = 0", "refit_every must be a whole number >= 1, not 0"),
    ("alphas = [0.3]", "alphas must be a list of confidence levels"),
])
def test_serve_names_a_files_bad_value_by_its_key(tmp_path: Path, served: dict[str, object],
                                                  line: str, words: str) -> None:
    toml = _toml(tmp_path, f'home = "{tmp_path / "h"}"\n{line}\n')
    code, out = _cli(["serve"], toml)
    assert code == 2 and f"{toml}: {words}" in out, out
    assert "--window" not in out and "--refit-every" not in out and not served, out


def test_a_files_home_that_is_a_file_is_named_as_the_files(tmp_path: Path,
                                                          served: dict[str, object]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    toml = _toml(tmp_path, f'home = "{afile}"\n')
    for command in (["serve"], ["run", "--quiet"]):
        code, out = _cli(command, toml)
        assert code == 2 and f"{toml}: home = \"{afile}\": {afile} is a file" in out, out
        assert "--home" not in out, out


@pytest.mark.parametrize("case", ["damaged ledger", "file in the way"])
def test_serve_names_a_files_home_by_its_key_in_later_checks(
        tmp_path: Path, served: dict[str, object], case: str) -> None:
    home = tmp_path / "risk"
    home.mkdir()
    if case == "damaged ledger":
        (home / "ledger.sqlite").write_bytes(b"not a database, not even close " * 4)
        words = "is not an SQLite database"
    else:
        (home / "keys").write_text("x", encoding="utf-8")
        words = f"cannot create the folder {home / 'keys' / 'agents'}"
    toml = _toml(tmp_path, f'home = "{home}"\n')
    code, out = _cli(["serve"], toml)
    assert code == 2 and f'{toml}: home = "{home}": ' in out and words in out, out
    assert "--home" not in out and not served, out
