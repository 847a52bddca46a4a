"""The field's metrics on hand-computed cases: end of speech, end of turn (cut-offs, latency, operating
points at a budget), barge-in; and barge-in from a real session against the local server."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import soxr

import vkit
from vkit import evaluation, filters, sinks, sources
from vkit.data import sample_path
from vkit.errors import ConfigError
from vkit.evaluation import Onset, PlayoutSpan
from vkit.frames import Marker, Playout
from vkit.realtime import Realtime

# two labelled turns: the first has an internal pause 1000-1400 ms; the second a 150 ms one (under 200 ms)
TURNS = [(0.0, 2000.0), (3000.0, 4500.0)]
SPEECH = [(0.0, 1000.0), (1400.0, 2000.0), (3000.0, 3500.0), (3650.0, 4500.0)]


def test_speech_ends_share_within_and_errors():
    labelled = [(0, 1000), (2000, 3000), (4000, 5000), (6000, 7000)]
    estimated = [(10, 1020), (1990, 3150), (6100, 6500), (6600, 6990)]  # the third label is missed
    scores = evaluation.score_speech_ends(estimated, labelled)
    assert scores.errors_ms == (20.0, 150.0, -10.0)  # the last overlapping estimate's end counts
    assert scores.num_missed == 1 and scores.num_labelled == 4
    assert scores.share_within(32) == pytest.approx(2 / 3) and scores.share_within(100) == pytest.approx(2 / 3)
    assert scores.median_error_ms == 20.0
    assert scores.p90_abs_error_ms == pytest.approx(20 + 0.8 * 130)  # |errors| 10, 20, 150


def test_an_estimate_bridging_a_pause_is_late_for_the_first_label():
    scores = evaluation.score_speech_ends([(0, 2010)], [(0, 1000), (1400, 2000)])
    assert scores.errors_ms == (1010.0, 10.0)
    assert math.isnan(evaluation.score_speech_ends([], [(0, 1)]).median_error_ms)


def test_turn_scores_count_cutoffs_in_pauses_and_mid_speech_and_latency():
    decisions = [1300.0,   # in turn 1's pause: a cut-off
                 500.0,    # mid-speech in turn 1
                 2250.0,   # first after turn 1's end: latency 250
                 2600.0,   # a second one in the same gap: extra
                 3600.0,   # in turn 2's 150 ms gap: under min_pause_ms, so mid-speech
                 -50.0]    # before any turn
    scores = evaluation.score_turns(decisions, TURNS, SPEECH)
    assert (scores.num_turns, scores.num_cut_turns, scores.num_pauses, scores.num_cut_pauses) == (2, 2, 1, 1)
    assert scores.num_cutoffs_outside_pauses == 2 and scores.num_extra_decisions == 2
    assert scores.latencies_ms == (250.0, math.inf)  # turn 2 got no decision after its end
    assert scores.cutoff_rate == 1.0 and scores.pause_cutoff_rate == 1.0 and scores.num_missed == 1
    assert scores.mean_latency_ms == 250.0
    assert scores.latency_ms(0) == 250.0 and scores.latency_ms(50) == math.inf


def test_turn_scores_at_the_boundaries():
    # a decision exactly at a turn's end is on time (latency 0); one a hair before is a cut-off
    on_time = evaluation.score_turns([2000.0, 4800.0], TURNS, SPEECH)
    assert on_time.latencies_ms == (0.0, 300.0) and on_time.cutoff_rate == 0.0 and on_time.num_missed == 0
    early = evaluation.score_turns([1999.0, 2100.0, 4800.0], TURNS, SPEECH)
    assert early.num_cut_turns == 1 and early.num_cut_pauses == 0 and early.num_cutoffs_outside_pauses == 1
    assert early.latencies_ms == (100.0, 300.0) and early.latency_ms(50) == 200.0 and early.statistic("p90") == 280.0
    assert math.isnan(evaluation.score_turns([], TURNS).pause_cutoff_rate)  # no speech spans: no pauses known
    with pytest.raises(ConfigError, match="overlap"):
        evaluation.score_turns([], [(0, 1000), (900, 2000)])
    with pytest.raises(ConfigError, match="statistic"):
        early.statistic("p99")  # type: ignore[arg-type]


def scores(cut_turns: int, latencies: list[float], num_turns: int = 20) -> evaluation.TurnScores:
    return evaluation.TurnScores(num_turns, cut_turns, 0, 0, cut_turns, 0, tuple(latencies))


# a silence-timeout sweep: longer timeouts cut fewer turns and answer later (20 turns each)
CURVE = {200: scores(4, [200.0] * 20),   # 20 % cut-offs at 200 ms
         400: scores(2, [400.0] * 20),   # 10 %
         800: scores(0, [800.0] * 20),   # 0 %
         600: scores(3, [600.0] * 20)}   # 15 % at 600 ms: dominated by 400, off the frontier


def test_latency_at_a_cutoff_budget_is_interpolated_on_the_frontier():
    point = evaluation.latency_at_cutoff(CURVE, 0.05)
    assert point.interpolated and point.between == (400, 800)
    assert point.value == pytest.approx(600.0)  # halfway from 10 % to 0 %: halfway from 400 to 800 ms
    assert point.measured == 800 and point.measured_value == 800.0
    exact = evaluation.latency_at_cutoff(CURVE, 0.10)
    assert not exact.interpolated and exact.value == 400.0 and exact.measured == 400
    loose = evaluation.latency_at_cutoff(CURVE, 0.5)  # every setting meets it: the fastest
    assert loose.value == 200.0 and not loose.interpolated
    assert math.isnan(evaluation.latency_at_cutoff({200: scores(4, [200.0] * 20)}, 0.05).value)


def test_cutoffs_at_a_latency_budget():
    point = evaluation.cutoffs_at_latency(CURVE, 300.0)
    assert point.interpolated and point.between == (200, 400) and point.value == pytest.approx(0.15)
    assert point.measured == 200 and point.measured_value == pytest.approx(0.2)
    assert evaluation.cutoffs_at_latency(CURVE, 400.0).value == pytest.approx(0.1)
    assert evaluation.cutoffs_at_latency(CURVE, 5000.0).value == 0.0
    assert math.isnan(evaluation.cutoffs_at_latency(CURVE, 100.0).value)


def test_budgets_read_the_chosen_statistic():
    # the same p50 (300 ms), but b's p90 is 900 ms (a's 305): by p50, b is better on both counts; by p90
    # only a is within 400 ms, and the value is interpolated towards b
    curve = {"a": scores(2, [300.0] * 18 + [350.0] * 2), "b": scores(1, [300.0] * 12 + [900.0] * 8)}
    assert evaluation.cutoffs_at_latency(curve, 400.0, statistic="p50").value == pytest.approx(0.05)
    by_p90 = evaluation.cutoffs_at_latency(curve, 400.0, statistic="p90")
    assert by_p90.measured == "a" and by_p90.measured_value == pytest.approx(0.1)
    assert by_p90.value == pytest.approx(0.1 - 0.05 * 95 / 595)
    missed = {"m": scores(0, [300.0] * 17 + [math.inf] * 3)}  # 15 % missed: p90 is infinite
    assert evaluation.latency_at_cutoff(missed, 0.05, statistic="p90").value == math.inf
    assert evaluation.latency_at_cutoff(missed, 0.05, statistic="mean").value == 300.0


def test_barge_in_reaction_and_false_interruptions():
    playouts = [PlayoutSpan(1000, 1450, truncated=True),   # cut 450 ms after it started
                PlayoutSpan(3000, 6000, truncated=False),  # played out despite the speech at 4000
                PlayoutSpan(7000, 7300, truncated=True),   # cut by a backchannel
                PlayoutSpan(9000, 9800, truncated=True)]   # cut 2.5 s after a noise: not credited to it
    onsets = [Onset(1200, "speech"), Onset(4000, "speech"), Onset(7100, "backchannel"), Onset(2000, "noise"),
              Onset(9100, "noise"), Onset(500, "speech")]  # the last two: one too long before the cut, one before any audio
    playouts[3] = PlayoutSpan(9000, 11600, truncated=True)
    result = evaluation.score_barge_ins(playouts, onsets)
    assert result.reaction_ms == (250.0,)
    assert (result.num_barge_ins, result.num_missed) == (2, 1)
    assert (result.num_non_speech, result.num_false_interruptions) == (2, 1)
    assert result.false_interruption_rate == 0.5 and result.reaction_percentile_ms(50) == 250.0


def test_playout_spans_and_input_positions_from_events():
    events = [Playout(stream="output", sample=0, sample_rate_hz=24_000, state="started", t_ns=1_000_000_000),
              Playout(stream="output", sample=0, sample_rate_hz=24_000, state="stopped", t_ns=2_000_000_000),
              Playout(stream="input", sample=0, sample_rate_hz=24_000, state="started", t_ns=2_100_000_000),
              Playout(stream="output", sample=0, sample_rate_hz=24_000, state="started", t_ns=3_000_000_000),
              Playout(stream="output", sample=0, sample_rate_hz=24_000, state="flushed", t_ns=3_500_000_000),
              Marker(name="stream_start", data={"stream": "input", "sample_rate_hz": 16_000, "start_sample": 1600},
                     t_ns=250_000_000)]
    assert evaluation.playout_spans(events) == [PlayoutSpan(1000.0, 2000.0, False), PlayoutSpan(3000.0, 3500.0, True)]
    assert evaluation.input_to_session_ms(events, 1100.0) == pytest.approx(1250.0)  # sample 1600 = 100 ms entered at 250 ms
    with pytest.raises(ConfigError, match="stream_start"):
        evaluation.input_to_session_ms(events, 0.0, stream="other")


@pytest.mark.timeout(90)
def test_barge_in_reaction_in_a_real_session():
    """The labelled second turn of the sample starts while a 4 s answer plays; the agent must stop within
    the VAD's onset time plus a chunk, and the reaction time is measured from the label, not from vkit."""
    audio, rate = sf.read(sample_path("two_turns.wav"), dtype="float32")
    audio = soxr.resample(audio, rate, 24_000).astype(np.float32)
    labels = evaluation.read_segments(sample_path("two_turns.segments.csv"))
    reply = np.full(24_000 * 4, 0.05, np.float32)
    graph = (sources.Array(audio[: 24_000 * 15 // 2], 24_000, pace="realtime") | filters.VAD("silero")
             | Realtime(turn_detection="manual", server={"responder": "scripted", "replies": [reply], "output_pace": 4.0})
             | sinks.VirtualSpeaker(prebuffer_ms=60))
    session = vkit.run(graph, clock="virtual")
    playouts = evaluation.playout_spans(session.events)
    onsets = [Onset(evaluation.input_to_session_ms(session.events, start), "speech") for start, _ in labels
              if start < 7500]  # the third turn is not in the 7.5 s played
    result = evaluation.score_barge_ins(playouts, onsets)
    assert result.num_barge_ins == 1 and result.num_missed == 0 and playouts[0].truncated
    # Silero needs min_speech_ms (250 ms) of speech, plus a window or two, before the client flushes
    assert 250 <= result.reaction_ms[0] <= 450
    assert result.reaction_ms[0] == pytest.approx(session.turns[0].interruption_reaction_ms, abs=80)


def test_the_tradeoff_plot_clips_slow_settings_at_the_axis_limit_and_says_so(tmp_path):
    plots = pytest.importorskip("vkit.plots")
    never = scores(0, [math.inf] * 20)  # a setting that never lets go
    slow = scores(0, [44_356.0] * 20)
    ax = plots.turn_tradeoff({"silence after silero": CURVE, "silence after energy": {-45: never, -35: slow, -25: CURVE[200]}},
                             max_latency_ms=1500, knob={"silence after silero": " ms", "silence after energy": " dBFS"})
    ax.figure.canvas.draw()
    arrows = [ln for ln in ax.get_lines() if ln.get_marker() == ">" and len(ln.get_xdata())]
    assert len(arrows) == 2 and all(ln.get_xdata()[0] == 1500 for ln in arrows)
    texts = [t.get_text() for t in ax.texts]
    assert "-45 dBFS: no decision" in texts and "-35 dBFS: 44.4 s" in texts and "400 ms" in texts
    assert ax.get_xlim() == (0, 1500) and "ms" in ax.get_xlabel() and "%" in ax.get_ylabel()
    legend, axes_box = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.y1 <= axes_box.y0  # below the data, covering none of it
    ax.figure.savefig(tmp_path / "tradeoff.png")


def test_the_detector_table_marks_interpolated_unreached_and_never():
    plots = pytest.importorskip("vkit.plots")
    rows = [{"detector": "a", "cutoffs_at_300ms": 0.15, "cutoffs_at_300ms_interpolated": True, "cutoffs_at_500ms": 0.1,
             "cutoffs_at_500ms_interpolated": False, "p50_ms_at_5pct": 600.0, "p50_ms_at_5pct_interpolated": True,
             "p90_ms_at_5pct": math.nan, "p90_ms_at_5pct_interpolated": False, "cost_us_per_decision": 12.0},
            {"detector": "b", "cutoffs_at_300ms": math.nan, "cutoffs_at_500ms": math.nan, "p50_ms_at_5pct": math.inf,
             "p90_ms_at_5pct": math.inf, "cost_us_per_decision": 250_000.0}]
    frame = plots.detector_table(rows).data
    assert list(frame.columns) == ["false cut-offs at 300 ms mean delay", "false cut-offs at 500 ms mean delay",
                                   "p50 delay at 5 % cut-offs (ms)", "p90 delay at 5 % cut-offs (ms)", "cost per decision"]
    assert frame.loc["a"].tolist() == ["~15 %", "10 %", "~600", "-", "12 \u00b5s"]
    assert frame.loc["b"].tolist() == ["-", "-", "never", "never", "250.0 ms"]


def test_budgets_by_pause_read_the_pause_rate():
    def by_pause(cut_pauses: int, latency_ms: float) -> evaluation.TurnScores:
        return evaluation.TurnScores(10, 10, 40, cut_pauses, 0, 0, (latency_ms,) * 10)  # every turn cut somewhere

    curve = {300: by_pause(8, 300.0), 700: by_pause(0, 700.0)}  # 20 % of pauses, then none
    assert math.isnan(evaluation.latency_at_cutoff(curve, 0.05).value)  # per turn, nothing reaches 5 %
    point = evaluation.latency_at_cutoff(curve, 0.05, by="pause")
    assert point.interpolated and point.value == pytest.approx(600.0)  # 3/4 of the way from 20 % to 0 %


def test_the_per_turn_delays_count_late_and_undecided_turns_beside_the_limit():
    plots = pytest.importorskip("vkit.plots")
    late = evaluation.TurnScores(5, 1, 0, 0, 1, 0, (200.0, 300.0, 2500.0, 8600.0, math.inf))
    ax = plots.decision_delays({"a": late, "b": scores(0, [math.inf] * 3, num_turns=3)}, max_delay_ms=1000)
    ax.figure.canvas.draw()
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["+2 later, up to 8.6 s\n1 never decided", "3 never decided"]
    dots = ax.collections[0].get_offsets()
    assert sorted(dots[:, 0].tolist()) == [200.0, 300.0]  # only the turns inside the axis are dots
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a\n20 % of 5 turns cut off", "b\n0 % of 3 turns cut off"]
