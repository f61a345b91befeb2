"""The plug-in agent of the tests of a plug-in edited while a swarm runs
(``tests/sandbox/test_plugin_code_recycled.py``, ``tests/swarm/test_plugin_changed_hosts.py``):
``house.agents:HalfLife`` written under a folder, and its edit. A test module imports it as
``from _halflife_plugin import ...`` (``tests/`` is on the path: ``tests/conftest.py``)."""

from __future__ import annotations

import textwrap
from pathlib import Path

PLUGIN = textwrap.dedent("""
    from swarmvar.models import NormalInverseGamma


    class HalfLife(NormalInverseGamma):
        name = "HalfLife"

        def __init__(self, forgetting=0.97):
            super().__init__(forgetting=forgetting)
""")
#: the edited code: another forgetting, another forecast
EDITED = PLUGIN.replace("0.97", "0.5")
SPEC = "house.agents:HalfLife"


def write_plugin(folder: Path) -> Path:
    """``house/agents.py`` (a package) under ``folder``; its module's path."""
    (folder / "house").mkdir(parents=True, exist_ok=True)
    (folder / "house" / "__init__.py").write_text("")
    module = folder / "house" / "agents.py"
    module.write_text(PLUGIN)
    return module
