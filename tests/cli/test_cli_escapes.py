"""Five escapes a CLI/service hunt reported, each a clear one-line usage error now.

Every test here failed on the code before it: a config file's value blamed on a flag
never given (and ``alphas`` in the file looser than ``--alpha``), HTML written into
``report.txt``, ``--refit-lag`` beyond ``--refit-every`` accepted (the runtime then skips
scheduled refits silently), data messages without the file's facts, and ``serve``
ending its startup with a traceback on a damaged agent key.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from swarmvar.config import load_config
from swarmvar.errors import InvalidParameter, InvalidReturns

sys.path.insert(0, str(Path(__file__).parent))
from _cli_text import invoke  # noqa: E402

runner = CliRunner()


_cli = invoke


def _table(path: Path, column: str, values: np.ndarray) -> Path:
    days = pd.bdate_range("2024-01-01", periods=values.size)
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), column: values.round(6)}).to_csv(
        path, index=False)
    return path


def _returns(n: int = 80, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.01, n)


# --- 1. config file values are the file's, with the flag's rule -----------------------------

@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(horizon=st.one_of(st.integers(251, 10**6), st.integers(-10**6, 0)))
def test_a_bad_horizon_in_the_file_names_the_file_and_key(horizon: int, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """Was: "Invalid value for --horizon" though no flag was given."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "swarmvar.toml").write_text(f"horizon = {horizon}\n", encoding="utf-8")
    data = _table(tmp_path / "r.csv", "r", _returns())
    code, out = _cli("var", "--data", str(data), "--kind", "return", "--agents", "nig",
                     "--last", "40", "--home", str(tmp_path / "home"))
    assert code == 2, out
    assert "swarmvar.toml: horizon" in out and str(horizon) in out, out  # the file's, its key
    assert "--horizon" not in out, out
    assert not (tmp_path / "home").exists()


def test_a_flag_still_names_the_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "swarmvar.toml").write_text("horizon = 5\n", encoding="utf-8")
    code, out = _cli("backtest", "--data", "sp500", "--agents", "nig", "--horizon", "999",
                     "--home", str(tmp_path / "home"))
    assert code == 2 and "--horizon" in out and "swarmvar.toml" not in out, out


def test_a_bad_window_in_the_file_of_backtest_names_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "swarmvar.toml").write_text("window = 1\n", encoding="utf-8")
    code, out = _cli("backtest", "--data", "sp500", "--agents", "nig",
                     "--home", str(tmp_path / "home"))
    assert code == 2 and "swarmvar.toml: window = 1:" in out and "--window" not in out, out


@settings(max_examples=25, deadline=None)
@given(st.floats(min_value=1e-6, max_value=0.5))
def test_the_file_takes_the_alpha_flags_rule(level: float) -> None:
    """Was: alphas in (0, 1) from the file, (0.5, 1) from --alpha."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "swarmvar.toml"
        path.write_text(f"alphas = [0.99, {level!r}]\n", encoding="utf-8")
        with pytest.raises(InvalidParameter, match=r"swarmvar\.toml: alphas .* between 0\.5 and 1"):
            load_config(path)
        path.write_text("alphas = [0.99, 0.975]\n", encoding="utf-8")
        assert load_config(path).values["alphas"] == [0.99, 0.975]


# --- 2. backtest --report is HTML ------------------------------------------------------------

@pytest.mark.parametrize("name", ["x.txt", "report", "r.pdf", "r.html.txt"])
def test_report_refuses_a_name_that_is_not_html(name: str, tmp_path: Path) -> None:
    """Was: HTML written into x.txt after the whole backtest."""
    code, out = _cli("backtest", "--data", "sp500", "--agents", "nig", "--last", "5",
                     "--window", "50", "--report", str(tmp_path / name),
                     "--home", str(tmp_path / "home"))
    assert code == 2 and "--report" in out and ".html" in out, out
    assert not (tmp_path / name).exists() and not (tmp_path / "home").exists()


# --- 3. a deferred refit no longer than the refit rhythm -------------------------------------

def test_run_refuses_a_refit_lag_beyond_refit_every(tmp_path: Path) -> None:
    """Was accepted; the runtime then skipped every refit due while one was pending."""
    data = _table(tmp_path / "r.csv", "a", _returns())
    code, out = _cli("run", "--data", str(data), "--agents", "nig", "--window", "30",
                     "--beats", "2", "--quiet", "--refit-every", "5", "--refit-lag", "6",
                     "--home", str(tmp_path / "home"))
    assert code == 2 and "--refit-lag" in out and "--refit-every 5" in out, out
    assert not (tmp_path / "home").exists()


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 50), st.integers(0, 60))
def test_portfolio_config_refuses_a_lag_beyond_the_rhythm(every: int, lag: int) -> None:
    from swarmvar.swarm import RoleConfig
    from swarmvar.swarm.beat import PortfolioConfig

    def make() -> PortfolioConfig:
        return PortfolioConfig("p", ("NormalInverseGamma",), refit_every=every,
                               roles=RoleConfig(refit_lag=lag))

    if lag > every:
        with pytest.raises(InvalidParameter, match=f"refit_lag {lag} .* refit_every {every}"):
            make()
    else:
        assert make().roles.refit_lag == lag


# --- 4. data messages say what the file holds ------------------------------------------------

@pytest.mark.parametrize("asked", ["date", "Date"])
def test_column_date_is_named_the_date_column(asked: str, tmp_path: Path) -> None:
    """Was: "no column 'date'; columns are ['close']" (the file has a date column)."""
    data = _table(tmp_path / "ok.csv", "close", 100 * np.exp(np.cumsum(_returns())))
    code, out = _cli("var", "--data", str(data), "--column", asked, "--agents", "nig",
                     "--last", "30", "--home", str(tmp_path / "home"))
    assert code == 2 and "ok.csv: 'date' is the file's date column" in out, out
    assert "'close'" in out and "--column" in out and "column=" not in out, out
    from swarmvar import data as data_mod

    with pytest.raises(InvalidReturns, match="date column.*column=... in Python"):
        data_mod.read(data, asked)
    with pytest.raises(InvalidReturns, match=r"no column 'open'; columns are \['close'\]"):
        data_mod.read(data, "open")


def test_run_names_a_file_of_prices(tmp_path: Path) -> None:
    """Was: "return at row 0 ... is 101.29" without the file's name."""
    data = _table(tmp_path / "prices.csv", "price", 100 * np.exp(np.cumsum(_returns())))
    code, out = _cli("run", "--data", str(data), "--agents", "nig", "--window", "30",
                     "--beats", "2", "--quiet", "--home", str(tmp_path / "home"))
    assert code == 2 and "prices.csv:" in out and "reads returns" in out, out
    assert "prices" in out.split("reads returns", 1)[1], out


# --- 5. a damaged agent key stops serve in one line -----------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_says_a_damaged_agent_key_in_one_line(tmp_path: Path) -> None:
    """Was: the service's startup failed with a full traceback, exit 3."""
    from swarmvar.service.app import open_ledger
    from swarmvar.service.config import ServiceConfig
    from swarmvar.service.desk import Desk
    from swarmvar.service.desk_book import DatedReturn

    home = tmp_path / "home"
    agents = ("NormalInverseGamma",)
    desk = Desk(open_ledger(ServiceConfig(home=home, agents=agents)), home, agents=agents,
                alphas=(0.99,), horizon=1, window=40, refit_every=20, seed=0)
    days = pd.bdate_range("2024-01-01", periods=45)
    desk.create("p1", [DatedReturn(d.date(), float(v)) for d, v in zip(
        days, _returns(45), strict=True)], key_id="test")
    desk.ledger.close()
    key = home / "keys" / "agents" / "NormalInverseGamma.pem"
    key.write_text("garbage\n", encoding="utf-8")
    key.chmod(0o600)
    code, out = _cli("serve", "--home", str(home), "--port", str(_free_port()), "--agents",
                     "nig", "--window", "40", "--no-arbiter")
    assert code == 2, out
    assert "NormalInverseGamma.pem is not a PEM private key" in out, out
    assert "Traceback" not in out and "startup failed" not in out, out
    assert key.read_text(encoding="utf-8") == "garbage\n"  # nothing rewritten


def test_check_agent_keys_reads_and_never_creates(tmp_path: Path) -> None:
    from swarmvar.swarm.consensus import agent_keys, check_agent_keys

    assert check_agent_keys(tmp_path, ["NormalInverseGamma"]) == 0
    assert not (tmp_path / "keys").exists()
    agent_keys(tmp_path, ["NormalInverseGamma", "StudentT"])
    assert check_agent_keys(tmp_path, ["NormalInverseGamma", "StudentT", "GarchT"]) == 2
    assert not (tmp_path / "keys" / "agents" / "GarchT.pem").exists()


@pytest.mark.parametrize("command", ["var", "run"])
def test_var_and_run_say_a_damaged_agent_key_in_one_line(command: str, tmp_path: Path) -> None:
    """``var`` and ``run`` load the keys as the service does; the same one-line refusal."""
    home = tmp_path / "home"
    key = home / "keys" / "agents" / "NormalInverseGamma.pem"
    key.parent.mkdir(parents=True)
    key.write_text("garbage\n", encoding="utf-8")
    key.chmod(0o600)
    data = _table(tmp_path / "r.csv", "a", _returns())
    extra = (["--kind", "return", "--last", "40"] if command == "var"
             else ["--window", "30", "--beats", "2", "--quiet"])
    code, out = _cli(command, "--data", str(data), "--agents", "nig", "--home", str(home),
                     *extra)
    assert code == 2 and "NormalInverseGamma.pem is not a PEM private key" in out, out
    assert "Traceback" not in out and key.read_text(encoding="utf-8") == "garbage\n"
