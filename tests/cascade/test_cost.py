"""Cost from usage and a dated price table."""

from __future__ import annotations

import pytest

from vkit.cascade.cost import Prices, turn_costs
from vkit.errors import ConfigError
from vkit.latency import Turn


def test_each_usage_kind_is_priced_once_and_the_date_travels_with_the_result():
    prices = Prices(as_of="2099-01-01", source="test", input_per_mtok=1, cached_input_per_mtok=0.25, output_per_mtok=4,
                    input_audio_per_mtok=32, output_audio_per_mtok=64, stt_per_minute=0.006, tts_per_mchar=15)
    cascade = Turn(1, input_tokens=1_000, cached_tokens=400, output_tokens=50, stt_audio_s=30.0, tts_characters=2_000)
    realtime = Turn(2, input_tokens=1_000, input_audio_tokens=600, output_tokens=500, output_audio_tokens=450)
    rows = turn_costs([cascade, realtime], prices)
    assert rows[0]["llm_usd"] == pytest.approx((600 * 1 + 400 * 0.25 + 50 * 4) / 1e6)
    assert rows[0]["stt_usd"] == pytest.approx(0.003) and rows[0]["tts_usd"] == pytest.approx(0.03)
    assert rows[1]["cost_usd"] == pytest.approx((400 * 1 + 600 * 32 + 50 * 4 + 450 * 64) / 1e6)
    assert {r["prices_as_of"] for r in rows} == {"2099-01-01"}


def test_an_old_price_table_warns_and_a_bad_date_is_refused():
    with pytest.warns(UserWarning, match="may be stale"):
        Prices(as_of="2020-01-01", source="https://openai.com/api/pricing")
    with pytest.raises(ConfigError, match="ISO date"):
        Prices(as_of="August 2025", source="x")
