"""docs/operations.md's recipe for a real create body (bundled S&P 500 -> body.json -> curl),
run as written in bash against a real ``swarmvar serve`` on a free loopback port.

The page marks the block "not run" for the docs sweep (it is not a plain ``swarmvar``
command); this test is what runs it. Two edits only: port 8000 becomes the server's,
and ``KEY`` is a writer key of the server's key file.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .conftest import PYTHON, ROOT, Keys, Server, start_server

MARK = "<!-- not run: tests/service/test_docs_recipe.py"


def _recipe() -> str:
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    assert text.count(MARK) == 1, "the recipe block's mark is gone from docs/operations.md"
    after = text[text.index(MARK):].split("\n")
    assert after[1] == "```bash", after[:2]
    end = after.index("```", 2)
    return "\n".join(after[2:end]) + "\n"


def test_operations_recipe_creates_a_portfolio_from_the_bundled_sp500(
        tmp_path: Path, session_keys: tuple[Path, Keys], server_factory: list[Server]) -> None:
    path, keys = session_keys
    script = _recipe()
    assert script.startswith("python -c ") and "127.0.0.1:8000" in script
    (tmp_path / "home").mkdir()
    srv = start_server(tmp_path / "home", path)
    server_factory.append(srv)
    env = {**os.environ, "KEY": keys.writer,
           "PATH": f"{Path(PYTHON).parent}:{os.environ['PATH']}"}  # `python`: this venv's
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(["bash", "-e", "-c", script.replace("http://127.0.0.1:8000", srv.url)],
                          cwd=work, env=env, capture_output=True, text=True, timeout=180,
                          check=False)
    assert done.returncode == 0, done.stderr
    body = json.loads((work / "body.json").read_text())
    assert body["name"] == "sp500" and len(body["history"]) == 300
    assert all(abs(h["return"]) < 0.2 for h in body["history"])  # fractions, not percent
    decoder, text, answers = json.JSONDecoder(), done.stdout.strip(), []
    while text:
        answer, end = decoder.raw_decode(text)
        answers.append(answer)
        text = text[end:].strip()
    assert len(answers) == 2, done.stdout[-2000:]
    created, var = answers
    assert created["name"] == "sp500" and created["beats"] == 0, created
    assert created["last_date"] == body["history"][-1]["date"], created
    assert var["seq"] == 0 and var["detail"] == "", var
    assert [level["alpha"] for level in var["levels"]] == [0.99, 0.975], var
    assert all(0 < level["var"] < level["es"] < 0.2 for level in var["levels"]), var
