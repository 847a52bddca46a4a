"""A few real-time callers against the embedded server on 127.0.0.1 complete with a merged turn table."""

from __future__ import annotations

import pytest

from vkit.scale.loadtest import loadtest


@pytest.mark.timeout(60)
def test_three_callers_against_the_embedded_server():
    result = loadtest(num_callers=3, ramp_s=0.3, duration_s=6.0)
    assert sorted(result.callers["caller"]) == [0, 1, 2]
    assert result.callers["error"].isna().all()
    assert set(result.turns["caller"]) == {0, 1, 2} and result.voice_to_voice_ms["p50"] > 0
    assert result.server_lag_ms is not None and result.server_lag_ms["p50"] >= 0
