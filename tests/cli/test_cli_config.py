

def test_the_var_track_record_default_is_the_swarm_policys_window() -> None:
    from swarmvar.config import DEFAULTS
    from swarmvar.swarm.consensus import SWARM_POLICY, TRACK_DAYS
    assert DEFAULTS["track_days"][0] == TRACK_DAYS == SWARM_POLICY.window


# --- a config file's errors keep the file's keys; a flag's stay in flag words --------------

def _cli(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    from typer.testing import CliRunner

    from swarmvar.cli import app

    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, " ".join(result.output.split())


def test_a_config_files_bad_value_names_its_key_not_a_flag(tmp_path) -> None:
    toml = tmp_path / "swarmvar.toml"
    toml.write_text("refit_every = 0\n")
    code, out = _cli(["config", "show"], env={"SWARMVAR_CONFIG": str(toml)})
    assert code == 2 and f"{toml}: refit_every must be a whole number >= 1, not 0" in out, out
    assert "--refit-every" not in out, out


def test_a_config_files_unknown_key_suggests_a_file_key(tmp_path) -> None:
    toml = tmp_path / "swarmvar.toml"
    toml.write_text("refit_evry = 3\n")
    code, out = _cli(["backtest", "--data", "sp500"], env={"SWARMVAR_CONFIG": str(toml)})
    assert code == 2 and "unknown setting 'refit_evry'; did you mean 'refit_every'?" in out, out
    assert "Known: home, data, agents" in out and "refit_every, last" in out, out
    assert "--refit-every" not in out and "track_days" in out, out


def test_a_flags_error_from_an_engine_still_names_the_flags(tmp_path) -> None:
    """The same words from the runtime (not the file) are rewritten into flags."""
    code, out = _cli(["run", "--data", "sp500", "--refit-every", "5", "--refit-lag", "9",
                      "--home", str(tmp_path / "h")])
    assert code == 2 and "--refit-lag" in out and "--refit-every" in out, out
    assert "refit_lag" not in out and "refit_every" not in out, out
    assert not (tmp_path / "h").exists()
