"""Every example script runs (small inputs), as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# Smaller workloads for scripts whose defaults are sized for a demo.
ARGS = {"detect_classify.py": ["--images", "4"]}

# What each script must print, proving it did its job (not just exited 0).
EXPECT = {
    "first_flow.py": "STOP: 46 bright frames of 100",
    "sessions.py": "session 19: [36100, 36481, 36864, 37249, 37636]",
    "face_webhook.py": "who was seen: astronaut 4, cameraman 4, visitor 4, unknown 4, nobody 4",
    "watch_dashboard.py": 'frame header: {"stream":"dashboard/1","n":1,"w":320,"h":240}',
    "scale_out.py": "STOP: 40 results, in order: True",
}


@pytest.mark.timeout(240)  # scale_out.py starts a local Ray: tens of seconds on a busy machine
@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_runs(script: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *ARGS.get(script, [])],
        capture_output=True,
        text=True,
        timeout=220,  # a hang guard, not a bound
        cwd=tmp_path,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    if script in EXPECT:
        assert EXPECT[script] in out.stdout
