"""Real-time callers against the embedded server (``vkit serve`` in its own process, 127.0.0.1) complete
with a merged turn table; on Dask they run in the cluster's worker processes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import vkit
from vkit.data import sample_path
from vkit.scale.loadtest import loadtest


@pytest.mark.timeout(120)
def test_callers_spread_over_dask_workers_against_the_server_in_its_own_process(tmp_path: Path):
    pytest.importorskip("distributed")
    audio, rate = sf.read(sample_path("two_turns.wav"), dtype="float32")
    speech = tmp_path / "one_turn.wav"  # 3.8 s: one utterance, then a second of silence
    sf.write(speech, np.concatenate([audio[int(0.9 * rate):int(3.7 * rate)], np.zeros(rate, np.float32)]), rate)
    result = loadtest(num_callers=3, ramp_s=0.3, duration_s=20.0, speech=speech, executor="dask", num_workers=2)
    assert sorted(result.callers["caller"]) == [0, 1, 2]
    assert result.callers["error"].isna().all() and (result.callers["num_errors"] == 0).all()
    assert set(result.turns["caller"]) == {0, 1, 2} and result.voice_to_voice_ms["p50"] > 0
    assert (result.callers["num_answered"] >= 1).all() and result.callers["v2v_p50_ms"].notna().all()
    processes = set(result.callers["process"])
    assert len(processes) == 2 and not any(p.endswith(f":{os.getpid()}") for p in processes)
    assert result.server_lag_ms is not None and 0 <= result.server_lag_ms["p50"] <= result.server_lag_ms["max"]
    assert result.cpu_pct["server"] > 0 and "server event-loop lag ms" in result.to_text()


def test_the_embedded_server_is_refused_for_a_remote_scheduler():
    with pytest.raises(vkit.ConfigError, match="127.0.0.1"):
        loadtest(num_callers=2, executor="tcp://10.20.30.40:8786")
