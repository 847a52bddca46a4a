"""Widgets without a browser: messages through the comm layer, live refresh, and the static plots."""

from __future__ import annotations

import re
import time

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import vkit
from vkit import filters, plots, sinks, sources
from vkit.data import sample_path
from vkit.frames import AudioFrame, Playout
from vkit.widgets import BrowserMic, GraphView, LatencyInspector, Player, VadTrace


def capture(widget) -> list[tuple]:
    sent: list[tuple] = []
    widget.comm.send = lambda data=None, metadata=None, buffers=None: sent.append((data, buffers))
    return sent


def from_browser(widget, content: dict, buffers: list | None = None) -> None:
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": buffers or []})


def test_player_sends_pcm16_with_positions_and_takes_positions_back():
    widget = Player()
    sent = capture(widget)
    widget.send_audio(AudioFrame.mono(np.array([0.5, -0.5, 0.0], np.float32), 24_000, start_sample=480))
    widget.flush()
    (first, buffers), (second, _) = sent
    assert first["content"] == {"type": "pcm16", "start_sample": 480, "sample_rate_hz": 24_000}
    assert np.frombuffer(bytes(buffers[0]), "<i2").tolist() == [16384, -16384, 0]
    assert second["content"] == {"type": "flush"}
    assert not widget.browser_is_playing
    from_browser(widget, {"type": "played", "position": 1234, "buffered": 960, "underruns": 1, "state": "running"})
    assert widget.played_position == 1234 and widget.num_underruns == 1 and widget.browser_is_playing


def test_the_player_sink_models_playout_and_forwards_audio_and_flushes():
    sink = sinks.Player(prebuffer_ms=80)
    sent = capture(sink.widget)
    session = vkit.run(sources.Tone(duration_ms=500, pace="realtime", stream="output") | sink, clock="virtual")
    audio = [m for m, _ in sent if m.get("content", {}).get("type") == "pcm16"]
    assert len(audio) == 25 and sink.widget.num_sent_samples == 12_000
    assert sent[0][0]["state"] == {"stream_id": 1}  # the run told the views a new stream starts
    states = [(p.state, p.t_ns) for p in session.events_of(Playout)]
    assert states == [("started", 20_000_000 + 80_000_000), ("stopped", 20_000_000 + 80_000_000 + 500_000_000)]
    tracker = sink.tracker
    assert tracker.played_sample(20_000_000 + 80_000_000 + 100_000_000) == 2400
    tracker.flush()
    assert sent[-1][0]["content"] == {"type": "flush"}
    from_browser(sink.widget, {"type": "played", "position": 777, "state": "running", "stream_id": 1})
    assert tracker.played_sample(0) == 777  # a browser that reports positions wins over the model


def test_the_inspector_shows_a_finished_session_and_follows_a_live_one():
    graph = sources.File(sample_path("two_turns.wav"), pace="realtime") | filters.VAD("silero") | sinks.Null()
    finished = vkit.run(graph, clock="virtual")
    inspector = LatencyInspector(finished)
    assert len(inspector.turns) == 3 and inspector.status == "complete"
    assert [t["turn"] for t in inspector.turns] == [1, 2, 3] and inspector.turns[0]["user_speech_end_ms"] > 0
    assert {"stage", "processing_p50_us"} <= set(inspector.stages[0])
    assert not inspector.refresh()  # nothing changed: nothing is sent
    assert "voice-to-voice" in repr(inspector)

    handle = (sources.File(sample_path("two_turns.wav"), pace="realtime") | filters.VAD("silero") | sinks.Null()).start()
    live = LatencyInspector(handle, refresh_hz=20)
    handle.wait(60)
    deadline = time.monotonic() + 5
    while live.status != "complete" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live.status == "complete" and len(live.turns) == 3


def test_graph_view_counts_items_per_stage_and_vad_trace_draws():
    graph = sources.File(sample_path("two_turns.wav")) | filters.VAD("silero") | sinks.Null()
    session = vkit.run(graph)
    view = GraphView(graph, session)
    assert view.svg.startswith("<svg") and view.counters["VAD"] == session.stages["VAD"]["num_items"] > 0
    trace = VadTrace(session)
    assert trace.svg.count("<rect") == 3 and "<polyline" in trace.svg and len(trace.points()) > 400
    assert not trace.refresh()  # nothing new: nothing resent


def test_vad_trace_follows_a_live_session_from_new_events_only():
    handle = (sources.File(sample_path("two_turns.wav"), pace="realtime") | filters.VAD("silero") | sinks.Null()).start()
    trace = VadTrace(handle, refresh_hz=20)
    sent = capture(trace)
    handle.wait(60)
    deadline = time.monotonic() + 5
    while len(trace.spans()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    updates = [m["state"]["svg"] for m, _ in sent if "svg" in m.get("state", {})]
    assert len(trace.spans()) == 3 and len(updates) >= 10  # redrawn many times while the audio played
    assert updates[0].count("<rect") < 3 and updates[-1].count("<rect") == 3
    scored = trace.points()
    assert len(scored) == len(set(scored))  # each window read once, however often it refreshed


def test_vad_trace_keeps_every_peak_of_a_long_session_within_two_points_per_pixel():
    from vkit.widgets.vad_trace import _at_most_two_per_pixel

    points = [(t * 32.0, 1.0 if t == 5001 else 0.1) for t in range(20_000)]
    kept = _at_most_two_per_pixel(points, points[-1][0], 100)
    assert len(kept) <= 200 and (5001 * 32.0, 1.0) in kept and kept == sorted(kept)


def test_browser_mic_chunks_become_resampled_frames_in_a_graph():
    mic = BrowserMic(sample_rate_hz=24_000)
    memory = sinks.Memory()
    handle = (mic | memory).start()
    deadline = time.monotonic() + 5
    while mic._deliver is None and time.monotonic() < deadline:  # noqa: SLF001 - wait for the source to start
        time.sleep(0.01)
    chunk = (np.sin(np.arange(4800) / 8) * 10_000).astype("<i2").tobytes()  # 100 ms at 48 kHz
    for _ in range(5):
        from_browser(mic.widget, {"type": "mic", "sample_rate_hz": 48_000}, [memoryview(chunk)])
    time.sleep(0.3)
    handle.stop()
    audio = memory.audio("input")
    assert mic.num_chunks == 5 and 10_000 <= audio.shape[1] <= 12_000
    assert memory.frames["input"][0].sample_rate_hz == 24_000


def test_browser_mic_frame_ms_reaches_the_page_and_chunk_ms_still_works():
    assert BrowserMic(frame_ms=20).widget.frame_ms == 20
    with pytest.warns(DeprecationWarning, match=r"BrowserMic\(chunk_ms=\).*use frame_ms="):
        assert BrowserMic(chunk_ms=60).frame_ms == 60


def test_static_plots_render(tmp_path):
    session = vkit.run(sources.File(sample_path("two_turns.wav"), pace="realtime") | filters.VAD("silero") | sinks.Null(),
                       clock="virtual")
    turns = session.turns
    for turn in turns:  # give the waterfall a server side to draw
        turn.first_audio_received_ms = turn.vad_end_detected_ms + 200
        turn.first_audio_played_ms = turn.vad_end_detected_ms + 260
        turn.finish()
    ax = plots.waterfall(turns)
    assert len(ax.patches) == 9 and ax.get_yticklabels()[0].get_text() == "turn 1"
    ax.figure.savefig(tmp_path / "waterfall.png")
    ax = plots.vad_trace(session)
    ax.figure.savefig(tmp_path / "trace.png")
    ax = plots.latency_distribution({"a": turns, "b": turns.rows()})
    assert len(ax.get_lines()) == 2
    table = plots.compare({"a": turns, "b": turns})
    assert table.loc["voice_to_voice_ms", ("median_ms", "a")] == pytest.approx(np.median([t.voice_to_voice_ms for t in turns]))
    assert all((tmp_path / name).stat().st_size > 5000 for name in ("waterfall.png", "trace.png"))


def test_vad_trace_draws_the_graphs_own_thresholds_unless_told_otherwise(tmp_path):
    graph = sources.File(sample_path()) | filters.VAD("silero", threshold=0.7) | sinks.Null()
    session = vkit.run(graph, record=tmp_path / "rec")
    trace = VadTrace(session)
    assert (trace.threshold, trace.negative_threshold) == (0.7, pytest.approx(0.55))
    y = trace.height_px - 20 - (trace.height_px - 40) * 0.7
    assert f'y1="{y:.1f}"' in trace.svg and "threshold 0.7," in trace.svg
    assert VadTrace(session, threshold=0.6).threshold == 0.6
    assert VadTrace(vkit.load_session(tmp_path / "rec")).threshold == 0.7  # a recording's manifest
    lines = {ln.get_label(): ln for ln in plots.vad_trace(session).get_lines()}
    assert lines["threshold 0.7"].get_ydata()[0] == 0.7
    assert lines["speech ends below 0.55"].get_ydata()[0] == pytest.approx(0.55)
    assert lines["speech ends below 0.55"].get_linestyle() == "--"
    assert "speech ends below" not in str(list({ln.get_label() for ln in plots.vad_trace(session, threshold=0.3).get_lines()}))


def test_the_inspector_summarises_p50_p90_and_marks_unmeasured_stages():
    from vkit.latency import stage_table
    from vkit.widgets.inspector import latency_summary

    rows = [{"voice_to_voice_ms": v, "end_of_turn_delay_ms": 100.0, "server_first_audio_ms": None,
             "first_audio_received_ms": 300.0, "first_audio_played_ms": 300.0 + p}
            for v, p in ((400.0, 80.0), (500.0, 90.0), (600.0, 100.0))]
    summary = {s["column"]: s for s in latency_summary(rows)}
    assert summary["voice_to_voice_ms"]["p50_ms"] == 500 and summary["voice_to_voice_ms"]["p90_ms"] == pytest.approx(580)
    assert summary["playout_ms"]["p50_ms"] == 90 and summary["playout_ms"]["num_turns"] == 3
    assert summary["server_first_audio_ms"] == {"column": "server_first_audio_ms", "label": "network + server",
                                                "num_turns": 0, "p50_ms": None, "p90_ms": None}
    session = vkit.run(sources.Tone(duration_ms=200, stream="output") | filters.Gain(gain_db=-6)
                       | sinks.VirtualSpeaker(), clock="virtual")
    table = {r["stage"]: r for r in stage_table(session.stages)}
    assert table["Gain"]["measured"] and table["Gain"]["processing_p50_us"] > 0
    assert not table["VirtualSpeaker"]["measured"] and table["VirtualSpeaker"]["processing_p50_us"] is None
    assert LatencyInspector(session).summary[0]["label"] == "voice-to-voice"


def _cascade_rows() -> list[dict]:
    return [{"turn": i + 1, "user_speech_end_ms": 1000.0 * i, "vad_end_detected_ms": 1000.0 * i + 150,
             "stt_final_ms": 1000.0 * i + 220, "llm_first_token_ms": 1000.0 * i + 480,
             "tts_first_audio_ms": 1000.0 * i + 600, "first_audio_received_ms": 1000.0 * i + 610,
             "first_audio_played_ms": 1000.0 * i + 690 if i else float("nan"),
             "voice_to_voice_ms": 690.0 if i else None, "interrupted": False} for i in range(2)]


def test_the_waterfall_draws_cascade_parts_in_order_with_a_legend_that_covers_nothing():
    ax = plots.waterfall(_cascade_rows())
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["end-of-turn detection", "speech-to-text final", "LLM first token", "TTS first audio",
                      "network + server", "first audio to played"]
    widths = [round(p.get_width()) for p in ax.patches]
    assert widths == [150, 70, 260, 120, 10] + [150, 70, 260, 120, 10, 80]  # turn 1 was never played
    legend_box = ax.get_legend().get_window_extent()
    assert not legend_box.overlaps(ax.get_window_extent())  # below the axes, not on the bars
    assert ax.get_xlabel() == "time after the end of user speech (ms)"
    assert [t.get_text() for t in ax.texts] == ["not played", "690 ms"]


def test_the_cdf_spans_zero_to_one_with_a_human_label_and_paper_style_is_small():
    rows = _cascade_rows()
    ax = plots.latency_distribution({"a": rows})
    assert ax.get_ylim()[0] == 0 and ax.get_lines()[0].get_ydata()[0] == 0
    assert ax.get_lines()[0].get_ydata()[-1] == 1 and ax.get_xlabel() == "voice-to-voice (ms)"
    with plots.paper_style():
        small = plots.waterfall(rows)
    assert tuple(small.figure.get_size_inches()) == (3.4, 2.2)


def test_turn_and_stage_tables_have_units_integers_and_no_nan_or_six_decimals():
    html = plots.turn_table(_cascade_rows()).to_html()
    assert "voice-to-voice (ms)" in html and "LLM first token (ms)" in html
    assert ">1<" in html and "1.0<" not in html.split("<tbody>")[1].split("</th>")[0]
    assert "nan" not in html.lower() and ">-<" in html and "690.0" in html
    session = vkit.run(sources.Tone(duration_ms=200, stream="output") | filters.Gain(gain_db=-6)
                       | sinks.VirtualSpeaker(), clock="virtual")
    table = plots.stage_table(session)
    html = table.to_html()
    assert "processing p50 (\u00b5s)" in html and "not measured" in html and "nan" not in html.lower()
    assert table.data.shape == (3, 8)
    assert not re.search(r"\de[+-]\d", html)  # no exponent form however large or small
