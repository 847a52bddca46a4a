"""Static plots and tables for analysis (matplotlib, pandas): the per-turn waterfall, the VAD trace,
latency distributions, and the turn and stage tables with units and sensible precision."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from vkit import evaluation, latency
from vkit.extras import require
from vkit.traces import TraceData, vad_thresholds
from vkit.units import ms_to_s

__all__ = ["waterfall", "vad_trace", "latency_distribution", "compare", "paper_style", "turn_table", "stage_table",
           "turn_tradeoff", "decision_delays", "detector_table", "LABELS"]

# A turn's bar runs from the end of user speech through these milestones, in this order; each segment
# is named by where it ends, and any a table lacks is skipped (the cascade parts appear only for a cascade).
_MILESTONES = [("detected", "end-of-turn detection", "#4c78a8"),
               ("stt_final_ms", "speech-to-text final", "#72b7b2"),
               ("llm_first_token_ms", "LLM first token", "#b279a2"),
               ("tts_first_audio_ms", "TTS first audio", "#9d755d"),
               ("first_audio_received_ms", "network + server", "#f58518"),
               ("first_audio_played_ms", "first audio to played", "#54a24b")]
_DETECTED = ("vad_end_detected_ms", "server_speech_stopped_ms", "commit_sent_ms")

# Human names with units for the turn table's columns (also the axis labels)
LABELS = {"turn": "turn", "user_speech_start_ms": "speech start (ms)", "user_speech_end_ms": "speech end (ms)",
          "vad_speech_end_ms": "VAD speech end (ms)", "vad_end_detected_ms": "VAD end detected (ms)",
          "server_speech_stopped_ms": "server speech stopped (ms)", "commit_sent_ms": "commit sent (ms)",
          "response_created_ms": "response created (ms)", "first_audio_received_ms": "first audio received (ms)",
          "first_audio_played_ms": "first audio played (ms)", "response_done_ms": "response done (ms)",
          "voice_to_voice_ms": "voice-to-voice (ms)", "end_of_turn_delay_ms": "end-of-turn detection (ms)",
          "server_first_audio_ms": "network + server (ms)", "stt_final_ms": "speech-to-text final (ms)",
          "llm_first_token_ms": "LLM first token (ms)", "tts_first_audio_ms": "TTS first audio (ms)",
          "interruption_reaction_ms": "barge-in reaction (ms)", "interrupted": "barge-in"}

# Paper figures: single-column width, 8-9 pt text, no top/right spines, vector-friendly fonts
PAPER_RC = {"figure.figsize": (3.4, 2.2), "figure.dpi": 150, "savefig.dpi": 300, "savefig.bbox": "tight",
            "font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
            "legend.fontsize": 7, "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False,
            "lines.linewidth": 1.0, "pdf.fonttype": 42, "ps.fonttype": 42}


def paper_style() -> Any:
    """A context for figures that go into a paper: ``with plots.paper_style(): plots.waterfall(turns)``."""
    mpl = require("matplotlib", extra="analysis", feature="vkit.plots")
    return mpl.rc_context(PAPER_RC)


def _rows(turns: Any) -> list[dict[str, Any]]:
    if hasattr(turns, "rows"):
        return turns.rows()
    if hasattr(turns, "to_dict"):
        return turns.to_dict("records")
    return [dict(t) for t in turns]


def _axes(ax: Any, size: tuple[float, float]) -> Any:
    if ax is not None:
        return ax
    mpl = require("matplotlib", extra="analysis", feature="vkit.plots")
    plt = require("matplotlib.pyplot", extra="analysis", feature="vkit.plots")

    paper = mpl.rcParams["figure.figsize"] == list(PAPER_RC["figure.figsize"])
    return plt.subplots(figsize=PAPER_RC["figure.figsize"] if paper else size, layout="constrained")[1]


def _value(row: dict[str, Any], key: str) -> float | None:
    value = row.get(key)
    if value is None or isinstance(value, bool):
        return None
    value = float(value)
    return None if np.isnan(value) else value


def turn_segments(row: dict[str, Any]) -> list[tuple[str, str, float, float]]:
    """(label, colour, from ms, to ms) of a turn's parts, on ms after the end of user speech."""
    start = _value(row, "user_speech_end_ms")
    if start is None:
        return []
    detected = [v for key in _DETECTED if (v := _value(row, key)) is not None]
    out, previous = [], 0.0
    for key, label, colour in _MILESTONES:
        value = max(detected) if key == "detected" and detected else _value(row, key)
        if value is not None and value - start > previous:
            out.append((label, colour, previous, value - start))
            previous = value - start
    return out


def waterfall(turns: Any, ax: Any = None, title: str | None = "Where each millisecond went") -> Any:
    """One bar per turn from the end of user speech to the first sound of the answer, split into its parts
    (end-of-turn detection, the cascade's parts when present, network + server, playout)."""
    rows = _rows(turns)
    ax = _axes(ax, (8, 1.2 + 0.38 * max(len(rows), 1)))
    seen: set[str] = set()
    ends = [0.0]
    for index, row in enumerate(rows):
        segments = turn_segments(row)
        for label, colour, a, b in segments:
            ax.barh(index, b - a, left=a, height=0.6, color=colour, label=None if label in seen else label)
            seen.add(label)
        end = segments[-1][3] if segments else 0.0
        ends.append(end)
        v2v = _value(row, "voice_to_voice_ms")
        if segments:
            ax.annotate(f"{v2v:.0f} ms" if v2v is not None else "not played", (end, index), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize="small")
    ax.set_yticks(range(len(rows)), [f"turn {int(r['turn'])}" for r in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, max(ends) * 1.15 or 100)  # room for the labels at the bar ends
    ax.set_xlabel("time after the end of user speech (ms)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    if title:
        ax.set_title(title, loc="left")
    if seen:  # below the axes, so it covers no bar
        order = [label for _, label, _ in _MILESTONES if label in seen]
        handles = dict(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
        ax.legend([handles[label] for label in order], order, loc="upper center", bbox_to_anchor=(0.5, -0.25),
                  ncol=min(len(order), 4), frameon=False, fontsize="small")
    return ax


def vad_trace(session: Any, ax: Any = None, threshold: float | None = None, stream: str = "input") -> Any:
    """VAD probability over media time, with the threshold (the graph's VAD's unless given), the level
    speech must fall under to end (dashed) and the detected speech shaded."""

    graph_threshold, negative = vad_thresholds(getattr(session, "session", session))
    if threshold is None:
        threshold = graph_threshold
    elif negative is not None and graph_threshold is not None:
        negative = None  # the graph's end level belongs to the graph's threshold, not to the one given
    trace = TraceData(stream)
    trace.add(list(getattr(session, "session", session).events))
    points = np.array(trace.points or [(0.0, 0.0)])
    ax = _axes(ax, (10, 2.5))
    ax.plot(ms_to_s(points[:, 0]), points[:, 1], color="#333", linewidth=0.8, label="speech probability")
    if threshold is not None:
        ax.axhline(threshold, color="#e45756", linewidth=0.8, label=f"threshold {threshold:g}")
    if negative is not None:
        ax.axhline(negative, color="#e45756", linewidth=0.8, linestyle="--", label=f"speech ends below {negative:.2g}")
    for i, (start, end) in enumerate(trace.spans):
        ax.axvspan(ms_to_s(start), ms_to_s(end), color="#4c78a8", alpha=0.15, label=None if i else "detected speech")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, max(ms_to_s(points[-1, 0]), 1e-3))
    ax.set_xlabel("media time (s)")
    ax.set_ylabel("speech probability")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small")  # outside the data
    return ax


def latency_distribution(tables: Mapping[str, Any], column: str = "voice_to_voice_ms", ax: Any = None) -> Any:
    """Empirical CDFs of one latency column for several runs (e.g. two server profiles)."""
    ax = _axes(ax, (6, 3.5))
    for name, turns in tables.items():
        values = np.sort([v for r in _rows(turns) if (v := _value(r, column)) is not None])
        if values.size:  # the curve starts at 0 left of the fastest turn and reaches 1 at the slowest
            x = np.concatenate([[values[0]], values])
            y = np.concatenate([[0.0], np.arange(1, values.size + 1) / values.size])
            ax.step(x, y, where="post", label=f"{name} (median {np.median(values):.0f} ms, n={values.size})")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(LABELS.get(column, column.removesuffix("_ms").replace("_", " ") + " (ms)"))
    ax.set_ylabel("fraction of turns at or below")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return ax


def compare(tables: Mapping[str, Any], columns: Sequence[str] = ("end_of_turn_delay_ms", "server_first_audio_ms",
                                                                  "voice_to_voice_ms")) -> Any:
    """A summary DataFrame: median and p90 of each column for each run."""
    pd = require("pandas", extra="analysis", feature="plots.compare")
    records = []
    for name, turns in tables.items():
        rows = _rows(turns)
        for column in columns:
            values = [v for r in rows if (v := _value(r, column)) is not None]
            records.append({"run": name, "column": column, "turns": len(values),
                            "median_ms": float(np.median(values)) if values else None,
                            "p90_ms": float(np.percentile(values, 90)) if values else None})
    return pd.DataFrame(records).pivot(index="column", columns="run", values=["median_ms", "p90_ms"])


def turn_table(turns: Any, columns: Sequence[str] = ("turn", "user_speech_end_ms", "end_of_turn_delay_ms",
                                                    "server_first_audio_ms", "first_audio_played_ms",
                                                    "voice_to_voice_ms", "interrupted")) -> Any:
    """The turn table as a styled DataFrame: turn as an integer, ms to one decimal, a missing value as
    "-" (NaN in ``.data``), headers with units. Cascade part columns present in the table are added."""
    pd = require("pandas", extra="analysis", feature="vkit.plots tables")
    rows = _rows(turns)
    shown = list(columns) + [c for c in ("stt_final_ms", "llm_first_token_ms", "tts_first_audio_ms")
                             if any(_value(r, c) is not None for r in rows) and c not in columns]
    frame = pd.DataFrame({c: [r.get(c) for r in rows] for c in shown})
    for column in shown:
        if column == "turn":
            frame[column] = frame[column].astype(int)
        elif column == "interrupted":
            frame[column] = frame[column].map(lambda v: "yes" if v is True or v == "True" else "")
        else:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame = frame.rename(columns=LABELS).set_index("turn")
    return frame.style.format(precision=1, na_rep="-")


def stage_table(session: Any) -> Any:
    """Per-stage timing as a styled DataFrame: algorithmic latency in ms, processing and queue wait in
    microseconds (3 significant digits), "not measured" where a stage's time per item is not known (async
    stages and sources), no index."""
    pd = require("pandas", extra="analysis", feature="vkit.plots tables")

    stages = getattr(getattr(session, "session", session), "stages", session)
    columns = {"stage": "stage", "kind": "kind", "num_items": "items", "latency_ms": "algorithmic latency (ms)",
               "processing_p50_us": "processing p50 (\u00b5s)", "processing_p95_us": "processing p95 (\u00b5s)",
               "queue_wait_p50_us": "queue wait p50 (\u00b5s)", "queue_wait_p95_us": "queue wait p95 (\u00b5s)"}
    frame = pd.DataFrame([{k: r.get(k) for k in columns} for r in latency.stage_table(stages)]).rename(columns=columns)
    numeric = [v for k, v in columns.items() if k.endswith(("_ms", "_us"))]
    frame[numeric] = frame[numeric].apply(pd.to_numeric, errors="coerce")
    processing = [columns["processing_p50_us"], columns["processing_p95_us"]]
    style = frame.style.hide(axis="index").format(_three_digits, subset=numeric, na_rep="-")
    style = style.format(_three_digits, subset=processing, na_rep="not measured")
    return style.set_properties(subset=["stage", "kind"], **{"text-align": "left"})


def _three_digits(value: float) -> str:
    """About three significant digits, never in exponent form: 0.123, 12.3, 123, 2,468."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


_STATISTIC_NAMES = {"mean": "mean", "p50": "median", "p90": "90th percentile"}


def _joined(texts: Sequence[str]) -> str:
    """Settings that share a spot: "0.8, 0.9", or "200 ms to 1500 ms"."""
    return ", ".join(texts) if len(texts) <= 3 else f"{texts[0]} to {texts[-1]}"


def turn_tradeoff(curves: Mapping[str, evaluation.Curve], *, statistic: evaluation.LatencyStatistic = "p50",
                  by: Literal["turn", "pause"] = "turn", max_latency_ms: float = 2000.0,
                  cutoff_budget: float | None = 0.05, knob: Mapping[str, str] | None = None, ax: Any = None) -> Any:
    """False cut-offs against end-of-turn decision delay, one line per detector through its settings.

    ``curves`` maps a detector's name to ``{setting: TurnScores}`` (``evaluation.score_turns`` per setting).
    The delay is when the turn was *declared* over after its labelled end (``statistic`` over the turns, a
    missed turn counting as infinitely late). A setting slower than ``max_latency_ms`` (or whose statistic is
    infinite) is drawn at the axis limit as a right-pointing arrow with its real value written beside it, so
    an outlier is visible without squeezing the others. Each point is labelled with its setting
    (``knob[name]`` names the knob's unit, e.g. "ms"); ``cutoff_budget`` draws that budget as a dashed line.
    The legend sits below the axes and the clipped values in the right margin, over no data.
    """
    mpl = require("matplotlib", extra="analysis", feature="vkit.plots")
    ax = _axes(ax, (7.0, 4.6))
    colours = mpl.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    top, placed = 0.0, []  # placed: the y of each clipped label so far, to stack labels that would overlap
    for index, (name, curve) in enumerate(curves.items()):
        colour = colours[index % len(colours)]
        unit = (knob or {}).get(name, "")
        rows = []
        for setting, scores in curve.items():
            rate = scores.cutoff_rate if by == "turn" else scores.pause_cutoff_rate
            if not math.isnan(rate):
                text = f"{setting:g}{unit}" if isinstance(setting, (int, float)) else str(setting)
                rows.append((scores.statistic(statistic), 100 * rate, text))
        rows.sort(key=lambda r: (r[0], -r[1]))
        inside = [r for r in rows if r[0] <= max_latency_ms]
        clipped = [r for r in rows if not r[0] <= max_latency_ms]  # nan and inf included
        top = max([top, *(y for _, y, _ in rows)])
        ax.plot([x for x, _, _ in inside], [y for _, y, _ in inside], marker="o", markersize=4, color=colour,
                linewidth=1.2, label=name)
        shared: dict[tuple[float, float], list[str]] = {}  # one label per spot
        for x, y, text in inside:
            shared.setdefault((x, y), []).append(text)
        for (x, y), texts in shared.items():
            ax.annotate(_joined(texts), (x, y), xytext=(4, 3), textcoords="offset points", fontsize="x-small",
                        color=colour)
        spots: dict[tuple[float, str], list[str]] = {}
        for x, y, text in clipped:
            shown = "no decision" if math.isnan(x) or math.isinf(x) else f"{x / 1000:.1f} s"
            spots.setdefault((y, shown), []).append(text)
        for (y, shown), texts in spots.items():
            ax.plot([max_latency_ms], [y], marker=">", markersize=8, color=colour, clip_on=False, linestyle="none")
            stack = sum(1 for other in placed if abs(other - y) < max(top, 10) * 0.04)
            placed.append(y)
            ax.annotate(f"{_joined(texts)}: {shown}", (max_latency_ms, y), xytext=(9, -9 * stack),
                        textcoords="offset points", ha="left", va="center", fontsize="x-small", color=colour,
                        annotation_clip=False)  # in the right margin, over no data
    if placed:  # the arrows explained where they cannot cover anything
        ax.plot([], [], marker=">", linestyle="none", color=mpl.rcParams["text.color"], alpha=0.6,
                label=f"slower than {max_latency_ms:g} ms (real value beside it)")
    if cutoff_budget is not None:
        ax.axhline(100 * cutoff_budget, color=mpl.rcParams["text.color"], linestyle="--", linewidth=0.8, alpha=0.6,
                   label=f"{100 * cutoff_budget:g} % cut-off budget")
    ax.set_xlim(0, max_latency_ms)
    ax.set_ylim(-1, max(top * 1.1, 10))
    ax.set_xlabel(f"end-of-turn decision delay, {_STATISTIC_NAMES[statistic]} (ms after the labelled end)")
    ax.set_ylabel("false cut-offs (% of turns)" if by == "turn" else "false cut-offs (% of pauses)")
    ax.grid(alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False, fontsize="small")  # below
    return ax


def decision_delays(scores: Mapping[str, evaluation.TurnScores], *, max_delay_ms: float = 2000.0, ax: Any = None) -> Any:
    """Each turn's end-of-turn decision delay (ms after its labelled end), one row of dots per detector setting.

    Turns decided later than ``max_delay_ms`` are not dropped: they are counted beside an arrow at the axis
    limit ("+3 later, up to 8.6 s"), as are turns never decided before the user spoke again ("9 never
    decided"). The row's label gives its false cut-offs; the median is a vertical tick.
    """
    mpl = require("matplotlib", extra="analysis", feature="vkit.plots")
    ax = _axes(ax, (7.0, 0.9 + 0.45 * max(len(scores), 1)))
    colours = mpl.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    rng = np.random.default_rng(0)  # the same jitter every time
    labels = []
    for row, (name, turn_scores) in enumerate(scores.items()):
        colour = colours[row % len(colours)]
        values = np.asarray(turn_scores.latencies_ms, float)
        decided = values[np.isfinite(values)]
        shown, later = decided[decided <= max_delay_ms], decided[decided > max_delay_ms]
        ax.scatter(shown, row + rng.uniform(-0.18, 0.18, shown.size), s=10, color=colour, alpha=0.7, linewidths=0)
        median = turn_scores.latency_ms(50)
        if math.isfinite(median) and median <= max_delay_ms:
            ax.plot([median, median], [row - 0.3, row + 0.3], color=colour, linewidth=2)
        beyond = ([f"+{later.size} later, up to {later.max() / 1000:.1f} s"] if later.size else []) + (
            [f"{turn_scores.num_missed} never decided"] if turn_scores.num_missed else [])
        if beyond:
            ax.plot([max_delay_ms], [row], marker=">", markersize=8, color=colour, clip_on=False, linestyle="none")
            ax.annotate("\n".join(beyond), (max_delay_ms, row), xytext=(9, 0), textcoords="offset points", va="center",
                        fontsize="x-small", color=colour, annotation_clip=False)  # in the right margin, over no data
        labels.append(f"{name}\n{100 * turn_scores.cutoff_rate:.0f} % of {turn_scores.num_turns} turns cut off")
    ax.set_yticks(range(len(labels)), labels, fontsize="small")
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xlim(0, max_delay_ms)
    ax.set_xlabel("end-of-turn decision delay per turn (ms after the labelled end; tick: median)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    return ax


def detector_table(rows: Sequence[Mapping[str, Any]], cutoff_budget: float = 0.05) -> Any:
    """``DetectorSweep.summary()`` as a styled DataFrame: false cut-offs in %, latencies in ms, a value read
    between two measured settings marked "~", "-" where no setting reaches the budget, "never" where the
    detector never decided, cost per decision in \u00b5s or ms."""
    pd = require("pandas", extra="analysis", feature="vkit.plots tables")
    pct = f"{100 * cutoff_budget:g}pct"

    def cell(row: Mapping[str, Any], key: str, scale: float, unit: str) -> str:
        value = row.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        if math.isinf(value):
            return "never"
        return f"{'~' if row.get(key + '_interpolated') else ''}{scale * value:.0f}{unit}"

    def cost(value: float) -> str:
        if value is None or math.isnan(value):
            return "-"
        return f"{value / 1000:.1f} ms" if value >= 1000 else f"{value:.0f} \u00b5s"

    budgets = sorted({k.split("_")[2] for r in rows for k in r if k.startswith("cutoffs_at_") and k.endswith("ms")},
                     key=lambda b: float(b.removesuffix("ms")))
    frame = pd.DataFrame([{
        "detector": r["detector"],
        **{f"false cut-offs at {b.removesuffix('ms')} ms mean delay": cell(r, f"cutoffs_at_{b}", 100, " %") for b in budgets},
        f"p50 delay at {100 * cutoff_budget:g} % cut-offs (ms)": cell(r, f"p50_ms_at_{pct}", 1, ""),
        f"p90 delay at {100 * cutoff_budget:g} % cut-offs (ms)": cell(r, f"p90_ms_at_{pct}", 1, ""),
        "cost per decision": cost(r.get("cost_us_per_decision", math.nan)),
    } for r in rows]).set_index("detector")
    return frame.style.set_caption("~: read between two measured settings; -: no setting reached the budget")
