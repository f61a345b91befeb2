

def test_the_var_track_record_default_is_the_swarm_policys_window() -> None:
    from swarmvar.config import DEFAULTS
    from swarmvar.swarm.consensus import SWARM_POLICY, TRACK_DAYS
    assert DEFAULTS["track_days"][0] == TRACK_DAYS == SWARM_POLICY.window
