"""Logging under attack: at most ``burst`` records per event and period, the rest counted."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from actorflow.serve._ratelog import RateLimitedLog


def test_a_flood_is_cut_to_the_burst_and_summarised_later() -> None:
    now = [0.0]
    log = RateLimitedLog(structlog.get_logger("t"), burst=3, period=10.0, clock=lambda: now[0])
    with capture_logs() as records:
        for i in range(1000):
            log.warning("request_head_timeout", n=i)
        log.warning("other_event")  # budgets are per event
        now[0] = 10.0
        log.warning("request_head_timeout", n=1000)
    heads = [r for r in records if r["event"] == "request_head_timeout"]
    assert [r["n"] for r in heads] == [0, 1, 2, 1000]
    assert heads[-1]["suppressed"] == 997
    assert "suppressed" not in heads[0]
    assert [r["event"] for r in records].count("other_event") == 1
