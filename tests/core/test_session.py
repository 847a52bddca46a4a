"""Results are values: a finished session pickles, with equal turns and speech segments."""

from __future__ import annotations

import pickle
from pathlib import Path

import vkit
from vkit import filters, sinks, sources
from vkit.data import sample_path
from vkit.realtime import Realtime
from vkit.session import Session, SessionRecord


def test_a_finished_session_pickles_with_equal_turns_and_segments(tmp_path: Path) -> None:
    graph = (sources.File(sample_path(), pace="realtime") | filters.Resample(sample_rate_hz=24_000)
             | filters.VAD("silero") | Realtime(turn_detection="manual") | sinks.VirtualSpeaker())
    session = vkit.run(graph, clock="virtual", record=tmp_path / "rec")
    loaded = vkit.load_session(tmp_path / "rec").record()
    assert loaded.turns == session.turns and loaded.speech_segments() == session.speech_segments()
    copy = pickle.loads(pickle.dumps(session))
    assert isinstance(copy, SessionRecord) and copy == session.record()
    assert len(copy.turns) == 3 and copy.turns == session.turns
    assert copy.speech_segments() == session.speech_segments() and len(copy.speech_segments()) == 3
    assert copy.status == "complete" and copy.stages["VAD"]["num_items"] == session.stages["VAD"]["num_items"]
    assert all(t.voice_to_voice_ms is not None for t in copy.turns)


def test_finish_callbacks_see_the_final_status_and_all_run() -> None:
    seen: list[str] = []
    session = Session()

    def broken(_: Session) -> None:
        raise OSError("disk gone")

    session.on_finish(broken)
    session.on_finish(lambda s: seen.append(s.status))
    error = session.finish("stopped")
    assert seen == ["stopped"] and isinstance(error, OSError)
    assert session.summary_line() == "session stopped after 0 turn(s), 0 answered"


def test_a_failed_run_keeps_its_error_as_text_in_the_record(sine_16k) -> None:  # noqa: ANN001
    handle = (sources.Array(sine_16k, 16_000) | vkit.stage(lambda f: 1 / 0) | sinks.Null()).start()
    try:
        handle.wait(10)
    except vkit.StageError:
        pass
    record = pickle.loads(pickle.dumps(handle.session))
    assert record.status == "error" and record.error.startswith("StageError") and "ZeroDivisionError" in record.error
