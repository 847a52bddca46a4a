"""The cascade end to end, offline: VAD -> STT (pocketsphinx) -> LLM (local server, both transports) -> TTS."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import vkit
from vkit import filters, sinks, sources
from vkit.cascade import LLM, STT, TTS
from vkit.cascade.tts import split_sentences
from vkit.data import sample_path
from vkit.latency import CASCADE_PARTS, compute_turns
from vkit.recording.events import events_from_records


def book_table(what: str) -> str:
    """Book a table."""
    calls.append(what)
    return "Booked for seven"


calls: list[str] = []


@pytest.mark.parametrize("transport", ["websocket", "http"])
def test_the_parts_of_each_cascade_turn_add_up_to_voice_to_voice(transport):
    audio, rate = sf.read(sample_path("two_turns.wav"), dtype="float32")
    calls.clear()
    # the labelled second turn (a booking: a short answer), then the first: each answer ends before the next starts
    clip = np.concatenate([audio[int(5.1 * rate):int(8.6 * rate)], audio[int(0.5 * rate):int(4.6 * rate)]])
    graph = (sources.Array(clip, rate, pace="realtime") | filters.VAD(model="silero") | STT()
             | LLM(transport=transport, tools=[book_table], server={"first_token_ms": 50, "tokens_per_s": 200})
             | TTS() | sinks.VirtualSpeaker(prebuffer_ms=60))
    turns = vkit.run(graph).turns
    assert len(turns) == 2 and all(t.transcript for t in turns)
    assert "table" in turns[0].transcript and calls == [turns[0].transcript]  # the model called the tool
    for turn in turns:
        parts = [getattr(turn, name) for name in CASCADE_PARTS]
        assert None not in parts, (turn.turn, parts)
        assert abs(sum(parts) - turn.voice_to_voice_ms) <= 1.0
        assert turn.input_tokens > 0 and turn.output_tokens > 0 and turn.tts_characters > 0 and turn.stt_audio_s > 1
    assert turns[1].cached_tokens > 0  # the first turn is held by the server (previous_response_id)
    assert turns[0].tts_characters == len("Booked for seven.")


def test_sentences_split_as_soon_as_they_end():
    assert split_sentences("Hello! How can") == (["Hello!"], "How can")
    assert split_sentences("No end yet") == ([], "No end yet")
    assert split_sentences("One. Two? Three") == (["One.", "Two?"], "Three")


def test_the_realtime_transcription_engine_streams_each_utterance_and_commits_it_at_the_vad_end(tmp_path):
    audio, rate = sf.read(sample_path("two_turns.wav"), dtype="float32")
    stt = STT("realtime")  # a transcription session on the embedded local server
    graph = (sources.Array(audio[int(5.1 * rate):int(8.6 * rate)], rate, pace="realtime") | filters.VAD(model="silero")
             | stt | LLM(server={"first_token_ms": 20}, warm_up=True, instructions="Be brief.") | TTS() | sinks.VirtualSpeaker(prebuffer_ms=60))
    turns = vkit.run(graph, record=tmp_path / "session").turns
    assert len(turns) == 1 and "table" in turns[0].transcript and stt.num_utterances == 1
    recorded = compute_turns(events_from_records(vkit.load_session(tmp_path / "session").events))
    assert [getattr(recorded[0], p) for p in CASCADE_PARTS] == [getattr(turns[0], p) for p in CASCADE_PARTS]
    assert turns[0].stt_audio_s > 2  # the look-back and the speech, streamed before the commit
    assert turns[0].cached_tokens > 0  # the warm-up prepared the conversation the turn continued
    assert abs(sum(getattr(turns[0], name) for name in CASCADE_PARTS) - turns[0].voice_to_voice_ms) <= 1.0
