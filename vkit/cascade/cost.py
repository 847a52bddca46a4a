"""Money next to milliseconds: the usage of each turn priced from a table the user passes.

Prices change; vkit ships none as a default. A ``Prices`` carries the date it was read (``as_of``) and
where from, every result names that date, and a table older than ``max_age_days`` warns.
"""

from __future__ import annotations

import datetime
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from vkit.errors import ConfigError, got

__all__ = ["Prices", "turn_costs"]


@dataclass(frozen=True)
class Prices:
    """USD prices: per million tokens (text in, cached in, out; audio in, out), per minute of
    transcribed audio, per million characters synthesised. ``as_of``: ISO date the prices were read."""

    as_of: str
    source: str
    input_per_mtok: float = 0.0
    cached_input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    input_audio_per_mtok: float = 0.0
    output_audio_per_mtok: float = 0.0
    stt_per_minute: float = 0.0
    tts_per_mchar: float = 0.0
    max_age_days: int = 180

    def __post_init__(self) -> None:
        try:
            read = datetime.date.fromisoformat(self.as_of)
        except ValueError as exc:
            raise ConfigError(f"Prices.as_of must be an ISO date (YYYY-MM-DD) {got(self.as_of)}") from exc
        age_days = (datetime.date.today() - read).days
        if age_days > self.max_age_days:
            warnings.warn(f"prices read on {self.as_of} ({age_days} days ago) may be stale: check {self.source}",
                          stacklevel=3)


def turn_costs(turns: Iterable[Any], prices: Prices) -> list[dict[str, Any]]:
    """One row per turn: its usage, its cost in USD by part and in all, and the prices' date."""
    rows = []
    for turn in turns:
        row = turn if isinstance(turn, dict) else asdict(turn)

        def value(name: str, row: dict[str, Any] = row) -> float:
            return float(row.get(name) or 0)

        audio_in, audio_out = value("input_audio_tokens"), value("output_audio_tokens")
        cached = value("cached_tokens")
        text_in = max(value("input_tokens") - audio_in - cached, 0.0)
        text_out = max(value("output_tokens") - audio_out, 0.0)
        llm = (text_in * prices.input_per_mtok + cached * prices.cached_input_per_mtok
               + text_out * prices.output_per_mtok + audio_in * prices.input_audio_per_mtok
               + audio_out * prices.output_audio_per_mtok) / 1e6
        stt = value("stt_audio_s") / 60 * prices.stt_per_minute
        tts = value("tts_characters") / 1e6 * prices.tts_per_mchar
        rows.append({"turn": row.get("turn"), "input_tokens": row.get("input_tokens"), "cached_tokens": row.get("cached_tokens"),
                     "output_tokens": row.get("output_tokens"), "stt_audio_s": row.get("stt_audio_s"),
                     "tts_characters": row.get("tts_characters"), "llm_usd": llm, "stt_usd": stt, "tts_usd": tts,
                     "cost_usd": llm + stt + tts, "prices_as_of": prices.as_of})
    return rows
