"""Scoring speech and turn detection against labels, with the field's metrics.

- A VAD: frame-level precision/recall/F1, onset delay, offset hangover (``score_vad``); where it puts the
  end of speech (``score_speech_ends``: share within 32 / 100 ms, median and p90 error).
- An end-of-turn detector: false cut-offs against end-of-turn latency (``score_turns``), the trade-off
  curve over a knob, and its operating points at a cut-off or a latency budget (``latency_at_cutoff``,
  ``cutoffs_at_latency``), as LiveKit's eot-bench reports them.
- Barge-in: reaction time and false interruptions on backchannels and noise (``score_barge_ins``), from
  a session's ``Playout`` events.
- Test signals: noise mixed into speech at a known SNR.

Everything takes plain lists of milliseconds, so a metric can be checked by hand.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from vkit.errors import ConfigError, got
from vkit.frames import Event, Marker, Playout
from vkit.units import ns_to_ms, samples_to_ms

Segments = Sequence[tuple[float, float]]


@dataclass(frozen=True)
class VadScores:
    """Frame-level agreement on a ``grid_ms`` grid, and boundary timing (medians, ms)."""

    precision: float
    recall: float
    f1: float
    onset_delay_ms: float
    offset_hangover_ms: float
    num_missed: int
    num_labelled: int


def read_segments(path: str | Path) -> list[tuple[float, float]]:
    """Read a ``start_ms,end_ms`` CSV (a header line is allowed)."""
    rows = []
    for line in Path(path).read_text().splitlines():
        parts = line.split(",")
        try:
            rows.append((float(parts[0]), float(parts[1])))
        except (ValueError, IndexError):
            continue
    return rows


def to_grid(segments: Segments, duration_ms: float, grid_ms: float = 10.0) -> np.ndarray:
    """A boolean speech mask with one cell per ``grid_ms`` (a cell is speech if its centre is)."""
    centres = (np.arange(int(np.ceil(duration_ms / grid_ms))) + 0.5) * grid_ms
    mask = np.zeros(centres.shape, bool)
    for start, end in segments:
        mask |= (centres >= start) & (centres < end)
    return mask


def score_vad(predicted: Segments, labelled: Segments, duration_ms: float, grid_ms: float = 10.0) -> VadScores:
    """Compare predicted speech segments with labelled ones."""
    if duration_ms <= 0:
        raise ConfigError(f"duration_ms must be positive {got(duration_ms)}")
    truth, guess = to_grid(labelled, duration_ms, grid_ms), to_grid(predicted, duration_ms, grid_ms)
    true_positive = float(np.sum(truth & guess))
    precision = true_positive / max(float(guess.sum()), 1.0)
    recall = true_positive / max(float(truth.sum()), 1.0)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    onsets, offsets, missed = [], [], 0
    for start, end in labelled:
        overlapping = [(a, b) for a, b in predicted if a < end and b > start]
        if not overlapping:
            missed += 1
            continue
        onsets.append(overlapping[0][0] - start)
        offsets.append(overlapping[-1][1] - end)
    return VadScores(precision, recall, f1, float(np.median(onsets)) if onsets else float("nan"),
                     float(np.median(offsets)) if offsets else float("nan"), missed, len(labelled))


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float, speech_mask: np.ndarray | None = None) -> np.ndarray:
    """Add ``noise`` scaled so active-speech power / noise power equals ``snr_db``.

    Active-speech power is taken over ``speech_mask`` (per sample) when given, else over samples above
    1e-4 absolute amplitude. The noise is tiled or cut to the speech's length.
    """
    speech = np.asarray(speech, np.float64)
    noise = np.resize(np.asarray(noise, np.float64), speech.shape)
    active = speech_mask if speech_mask is not None else np.abs(speech) > 1e-4
    if not np.any(active):
        raise ConfigError(f"mix_at_snr found no active speech {got(speech.shape)}")
    speech_power = float(np.mean(speech[active] ** 2))
    noise_power = float(np.mean(noise**2))
    scale = np.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))
    return (speech + scale * noise).astype(np.float32)


def pink_noise(num_samples: int, seed: int = 0) -> np.ndarray:
    """Pink (1/f) noise of unit RMS."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.shape[0]), 1))
    noise = np.fft.irfft(spectrum, n=num_samples)
    return (noise / np.sqrt(np.mean(noise**2))).astype(np.float32)


# -- end of speech -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointScores:
    """Where a VAD put the end of each labelled speech segment: ``errors_ms`` is the estimated end minus the
    labelled end (positive: late), one per labelled segment some estimated segment overlaps."""

    errors_ms: tuple[float, ...]
    num_labelled: int

    @property
    def num_missed(self) -> int:
        """Labelled segments no estimated segment overlaps."""
        return self.num_labelled - len(self.errors_ms)

    def share_within(self, tolerance_ms: float) -> float:
        """Share of the matched ends within ``tolerance_ms`` of the label, either side (nan if none)."""
        errors = np.abs(np.asarray(self.errors_ms))
        return float(np.mean(errors <= tolerance_ms)) if errors.size else math.nan

    @property
    def median_error_ms(self) -> float:
        """Median signed error (ms; positive: the estimate ends late)."""
        return float(np.median(self.errors_ms)) if self.errors_ms else math.nan

    @property
    def p90_abs_error_ms(self) -> float:
        """90th percentile of the absolute error (ms)."""
        return float(np.percentile(np.abs(self.errors_ms), 90)) if self.errors_ms else math.nan


def score_speech_ends(estimated: Segments, labelled: Segments) -> EndpointScores:
    """Compare the ends of estimated speech segments with labelled ones.

    Each labelled segment is matched with the last estimated segment that overlaps it, so an estimate that
    bridges a labelled pause is charged for ending late, and a labelled segment nothing overlaps is missed.
    Give the estimate's speech end (``SpeechStopped.speech_end_sample``), not its padded end.
    """
    errors = []
    for start, end in labelled:
        overlapping = [b for a, b in estimated if a < end and b > start]
        if overlapping:
            errors.append(float(overlapping[-1] - end))
    return EndpointScores(tuple(errors), len(labelled))


# -- end of turn -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TurnScores:
    """A detector's end-of-turn decisions scored against labelled turns (counts, and one latency per turn).

    ``latencies_ms`` has one entry per labelled turn: the first decision at or after the turn's end and
    before the next turn starts, minus the end; ``inf`` when there was none (a missed turn: the agent would
    not have answered before the user spoke again).
    """

    num_turns: int
    num_cut_turns: int
    num_pauses: int
    num_cut_pauses: int
    num_cutoffs_outside_pauses: int
    num_extra_decisions: int
    latencies_ms: tuple[float, ...]

    @property
    def cutoff_rate(self) -> float:
        """Share of labelled turns the detector declared over at least once before their end."""
        return self.num_cut_turns / self.num_turns if self.num_turns else math.nan

    @property
    def pause_cutoff_rate(self) -> float:
        """Share of the labelled turn-internal pauses with a decision inside (eot-bench's unit; nan if none)."""
        return self.num_cut_pauses / self.num_pauses if self.num_pauses else math.nan

    @property
    def num_missed(self) -> int:
        """Turns with no decision between their end and the next turn's start."""
        return sum(1 for v in self.latencies_ms if math.isinf(v))

    @property
    def mean_latency_ms(self) -> float:
        """Mean latency over the turns that got a decision (nan if none did)."""
        found = [v for v in self.latencies_ms if not math.isinf(v)]
        return float(np.mean(found)) if found else math.nan

    def latency_ms(self, percentile: float) -> float:
        """A percentile of the latency, a missed turn counting as infinitely late (so p90 is ``inf`` when more
        than a tenth of the turns were missed)."""
        values = np.sort(np.asarray(self.latencies_ms, float))
        if not values.size:
            return math.nan
        rank = percentile / 100 * (values.size - 1)
        low, high = values[int(math.floor(rank))], values[int(math.ceil(rank))]
        return float(high) if math.isinf(high) else float(low + (high - low) * (rank - math.floor(rank)))

    def statistic(self, name: LatencyStatistic) -> float:
        """``"mean"``, ``"p50"`` or ``"p90"`` latency (ms)."""
        if name == "mean":
            return self.mean_latency_ms
        if name in ("p50", "p90"):
            return self.latency_ms(float(name[1:]))
        raise ConfigError(f"latency statistic must be 'mean', 'p50' or 'p90' {got(name)}")


LatencyStatistic = Literal["mean", "p50", "p90"]


def score_turns(decisions_ms: Iterable[float], turns: Segments, speech: Segments | None = None, *,
                min_pause_ms: float = 200.0) -> TurnScores:
    """Score end-of-turn decisions (the media time at which a detector declared the user done, in ms).

    The definitions follow LiveKit's eot-bench (github.com/livekit/eot-bench, "Why false cutoffs vs.
    latency"): a *false cut-off* is a decision while the user's turn is still going, and *latency* is the time
    from the true end of the turn to the decision ("conversational dead air, not compute"). eot-bench scores a
    model only at the silences of a turn; a streaming detector can also fire mid-speech, so here a decision
    anywhere inside ``[start, end)`` of a labelled turn is a cut-off: in a labelled pause, or elsewhere
    (mid-speech, or in a pause shorter than ``min_pause_ms``: ``num_cutoffs_outside_pauses``).
    ``cutoff_rate`` is per turn; ``pause_cutoff_rate`` per pause, eot-bench's unit, over the gaps of at least
    ``min_pause_ms`` (eot-bench: 200 ms) between ``speech`` segments that lie inside one turn. Later decisions after a turn's first one, and decisions outside every turn before
    the first, are counted in ``num_extra_decisions``.
    """
    turns = sorted((float(a), float(b)) for a, b in turns)
    for (_, end), (start, _) in zip(turns, turns[1:], strict=False):
        if start < end:
            raise ConfigError(f"labelled turns overlap {got((end, start))}")
    pauses: list[tuple[float, float]] = []
    for start, end in turns:
        inside = sorted((a, b) for a, b in (speech or []) if a < end and b > start)
        pauses += [(b, a) for (_, b), (a, _) in zip(inside, inside[1:], strict=False) if a - b >= min_pause_ms]
    cut_turns, cut_pauses, mid_speech, extra = set(), set(), 0, 0
    latencies = [math.inf] * len(turns)
    starts = [a for a, _ in turns]
    for decision in sorted(decisions_ms):
        index = int(np.searchsorted(starts, decision, side="right")) - 1  # the last turn started at or before it
        if index < 0:
            extra += 1
            continue
        start, end = turns[index]
        if decision < end:
            cut_turns.add(index)
            pause = next((p for p in pauses if p[0] <= decision < p[1]), None)
            if pause is None:
                mid_speech += 1
            else:
                cut_pauses.add(pause)
        elif math.isinf(latencies[index]):
            latencies[index] = decision - end
        else:
            extra += 1
    return TurnScores(len(turns), len(cut_turns), len(pauses), len(cut_pauses), mid_speech, extra, tuple(latencies))


@dataclass(frozen=True)
class OperatingPoint:
    """A detector's trade-off at a budget.

    ``value`` is read off the curve through the measured settings, linearly interpolated between the two
    settings that bracket the budget (``interpolated``, ``between``): a setting between them would land
    near it, but none was measured there. ``measured`` is the best measured setting within the budget and
    ``measured_value`` its value, eot-bench's way (no interpolation). Both are nan (and ``measured`` None)
    when no measured setting meets the budget.
    """

    budget: float
    value: float
    interpolated: bool
    between: tuple[Hashable, ...]
    measured: Hashable | None
    measured_value: float


Curve = Mapping[Hashable, TurnScores]


def _frontier(curve: Curve, statistic: LatencyStatistic, by: Literal["turn", "pause"]) -> list[tuple[float, float, Hashable]]:
    """(latency, cut-off rate, setting) of the settings no other beats on both, fastest first."""
    points = []
    for setting, scores in curve.items():
        rate = scores.cutoff_rate if by == "turn" else scores.pause_cutoff_rate
        latency = scores.statistic(statistic)
        if not (math.isnan(rate) or math.isnan(latency)):
            points.append((latency, rate, setting))
    points.sort(key=lambda p: (p[0], p[1]))
    frontier: list[tuple[float, float, Hashable]] = []
    for point in points:
        if not frontier or point[1] < frontier[-1][1]:
            frontier.append(point)
    return frontier


def _between(x0: float, y0: float, x1: float, y1: float, x: float) -> float:
    return y0 if x1 == x0 else y0 + (x - x0) * (y1 - y0) / (x1 - x0)


def latency_at_cutoff(curve: Curve, cutoff_rate: float = 0.05, *, statistic: LatencyStatistic = "p50",
                      by: Literal["turn", "pause"] = "turn") -> OperatingPoint:
    """The latency (ms) a detector needs to keep false cut-offs at or under ``cutoff_rate``.

    ``curve`` maps each setting of the detector's knob (a silence timeout, a threshold) to its scores.
    eot-bench reports the best mean latency at 5 % and 10 % false cut-offs over its policy grid; here the
    statistic is chosen (``"mean"``, ``"p50"``, ``"p90"``) and the value is also interpolated on the
    Pareto frontier of the measured settings (see ``OperatingPoint``).
    """
    frontier = _frontier(curve, statistic, by)
    feasible = [i for i, (_, rate, _) in enumerate(frontier) if rate <= cutoff_rate]
    if not feasible:
        return OperatingPoint(cutoff_rate, math.nan, False, (), None, math.nan)
    k = feasible[0]
    latency, rate, setting = frontier[k]
    if k == 0 or rate == cutoff_rate or math.isinf(latency):
        return OperatingPoint(cutoff_rate, latency, False, (setting,), setting, latency)
    before = frontier[k - 1]
    value = _between(before[1], before[0], rate, latency, cutoff_rate)
    return OperatingPoint(cutoff_rate, value, True, (before[2], setting), setting, latency)


def cutoffs_at_latency(curve: Curve, latency_ms: float = 300.0, *, statistic: LatencyStatistic = "mean",
                       by: Literal["turn", "pause"] = "turn") -> OperatingPoint:
    """The false cut-off rate a detector reaches when it may take ``latency_ms`` (``statistic`` of its
    latency; eot-bench budgets the mean at 300 and 600 ms), interpolated as in ``latency_at_cutoff``."""
    frontier = _frontier(curve, statistic, by)
    feasible = [i for i, (latency, _, _) in enumerate(frontier) if latency <= latency_ms]
    if not feasible:
        return OperatingPoint(latency_ms, math.nan, False, (), None, math.nan)
    k = feasible[-1]
    latency, rate, setting = frontier[k]
    if k == len(frontier) - 1 or latency == latency_ms or math.isinf(frontier[k + 1][0]):
        return OperatingPoint(latency_ms, rate, False, (setting,), setting, rate)
    after = frontier[k + 1]
    value = _between(latency, rate, after[0], after[1], latency_ms)
    return OperatingPoint(latency_ms, value, True, (setting, after[2]), setting, rate)


# -- barge-in --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Onset:
    """A labelled sound from the user while the agent may be speaking, on the session clock (ms): ``"speech"``
    (a real barge-in the agent should yield to), ``"backchannel"`` ("mm-hm") or ``"noise"`` (it should not)."""

    start_ms: float
    kind: Literal["speech", "backchannel", "noise"]


@dataclass(frozen=True)
class PlayoutSpan:
    """The agent's audio sounding from ``start_ms`` to ``stop_ms`` (session clock); ``truncated`` when it
    was cut short (the sink flushed it) rather than played out."""

    start_ms: float
    stop_ms: float
    truncated: bool


@dataclass(frozen=True)
class BargeInScores:
    """``reaction_ms``: for each labelled speech onset during the agent's audio that cut it short within the
    allowed time, from the onset to the audio stopping. ``num_missed``: speech onsets during the agent's audio
    that did not. ``num_false_interruptions`` of ``num_non_speech``: backchannels and noise during the agent's
    audio that cut it short."""

    reaction_ms: tuple[float, ...]
    num_barge_ins: int
    num_missed: int
    num_non_speech: int
    num_false_interruptions: int

    @property
    def false_interruption_rate(self) -> float:
        return self.num_false_interruptions / self.num_non_speech if self.num_non_speech else math.nan

    def reaction_percentile_ms(self, percentile: float) -> float:
        return float(np.percentile(self.reaction_ms, percentile)) if self.reaction_ms else math.nan


def playout_spans(events: Iterable[Event], stream: str = "output") -> list[PlayoutSpan]:
    """The agent's audio as a session played it: each ``Playout`` "started" to the next "stopped" (played
    out) or "flushed" (cut short), in session ms."""
    spans, start = [], None
    for event in sorted((e for e in events if isinstance(e, Playout) and e.stream == stream), key=lambda e: e.t_ns):
        if event.state == "started":
            start = ns_to_ms(event.t_ns) if start is None else start
        elif start is not None:
            spans.append(PlayoutSpan(start, ns_to_ms(event.t_ns), event.state == "flushed"))
            start = None
    return spans


def input_to_session_ms(events: Iterable[Event], media_ms: float, stream: str = "input") -> float:
    """A position on the input stream (ms of media, as labels are given) on the session clock, by the
    stream's start marker: when its first sample entered the session."""
    for event in sorted(events, key=lambda e: e.t_ns):
        if isinstance(event, Marker) and event.name == "stream_start" and event.data.get("stream") == stream:
            rate = event.data.get("sample_rate_hz") or 1
            return ns_to_ms(event.t_ns) + media_ms - samples_to_ms(event.data.get("start_sample", 0), rate)
    raise ConfigError(f"no stream_start marker for stream {got(stream)}")


def score_barge_ins(playouts: Sequence[PlayoutSpan], onsets: Sequence[Onset], *,
                    max_reaction_ms: float = 2000.0) -> BargeInScores:
    """Score the agent's reaction to sounds from the user while it speaks.

    An onset counts when it falls inside a span of the agent's audio; the span's truncation is credited to
    the latest onset before it, when it came within ``max_reaction_ms`` of that onset. A speech onset so
    credited gives a reaction time (the metric design.md names: user speech start during a response to the
    response's audio stopping); a backchannel or noise so credited is a false interruption (LiveKit's
    ``false_interruption_timeout`` and Pipecat's interruption strategies exist to avoid them).
    """
    credited: dict[int, float] = {}
    during = []
    for index, onset in enumerate(sorted(onsets, key=lambda o: o.start_ms)):
        span = next((s for s in playouts if s.start_ms <= onset.start_ms < s.stop_ms), None)
        if span is None:
            continue
        during.append((index, onset, span))
    for span in playouts:
        if not span.truncated:
            continue
        before = [(i, o) for i, o, s in during if s is span and o.start_ms <= span.stop_ms]
        if before and span.stop_ms - before[-1][1].start_ms <= max_reaction_ms:
            credited[before[-1][0]] = span.stop_ms - before[-1][1].start_ms
    speech = [(i, o) for i, o, _ in during if o.kind == "speech"]
    other = [(i, o) for i, o, _ in during if o.kind != "speech"]
    reactions = tuple(credited[i] for i, _ in speech if i in credited)
    return BargeInScores(reactions, len(speech), len(speech) - len(reactions), len(other),
                         sum(1 for i, _ in other if i in credited))
