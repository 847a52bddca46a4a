"""The codec on literal JSON, both dialects, and the audio encodings."""

from __future__ import annotations

import base64
import json
import warnings

import numpy as np
import pytest

from vkit.errors import RemoteProtocolError
from vkit.realtime import events as ev
from vkit.realtime.codec import (
    alaw_decode,
    alaw_encode,
    decode_audio,
    decode_event,
    encode_audio,
    encode_event,
    ulaw_decode,
    ulaw_encode,
)


def test_ga_audio_delta_decodes_to_a_typed_event():
    text = ('{"type":"response.output_audio.delta","event_id":"event_1","response_id":"resp_1","item_id":"item_1",'
            '"output_index":0,"content_index":0,"delta":"AAAA"}')
    event = decode_event(text, "server", "ga")
    assert type(event).__name__ == "ResponseOutputAudioDelta"
    assert (event.response_id, event.item_id, event.delta) == ("resp_1", "item_1", "AAAA")
    assert json.loads(encode_event(event, "ga")) == json.loads(text)


def test_beta_names_map_to_the_ga_vocabulary_and_back():
    text = ('{"type":"response.audio.delta","event_id":"e","response_id":"r","item_id":"i","output_index":0,'
            '"content_index":0,"delta":"AAAA"}')
    event = decode_event(text, "server", "beta")
    assert event.type == "response.output_audio.delta"
    assert json.loads(encode_event(event, "beta"))["type"] == "response.audio.delta"
    assert json.loads(encode_event(event, "ga"))["type"] == "response.output_audio.delta"
    transcript = decode_event('{"type":"response.audio_transcript.done","response_id":"r","item_id":"i",'
                              '"output_index":0,"content_index":0,"transcript":"hi"}', "server", "beta")
    assert transcript.type == "response.output_audio_transcript.done" and transcript.transcript == "hi"


def test_unknown_types_are_kept_with_their_fields():
    event = decode_event('{"type":"response.mcp_call.completed","event_id":"e9","item_id":"x"}', "server", "ga")
    assert isinstance(event, ev.UnknownEvent)
    assert event.wire_type == "response.mcp_call.completed" and event.extra == {"item_id": "x"}
    assert json.loads(encode_event(event)) == {"type": "response.mcp_call.completed", "event_id": "e9", "item_id": "x"}


@pytest.mark.parametrize("text,match", [
    ("not json", "invalid JSON"),
    ("[1, 2, 3]", "must be a JSON object"),
    ('{"event_id": "e"}', "string 'type'"),
    ('{"type": "response.output_audio.delta", "item_id": "i"}', "missing required parameter 'response_id'"),
])
def test_garbage_from_a_server_is_a_remote_protocol_error(text, match):
    with pytest.raises(RemoteProtocolError, match=match):
        decode_event(text, "server", "ga")


def test_extra_keys_survive_a_round_trip():
    text = '{"type":"input_audio_buffer.append","audio":"AAAA","future_field":{"a":1}}'
    event = decode_event(text, "client")
    assert event.extra == {"future_field": {"a": 1}}
    assert json.loads(encode_event(event)) == json.loads(text)


def test_pcm16_round_trip_is_exact_for_representable_values():
    samples = (np.arange(-32768, 32768, 7) / 32768).astype(np.float32)
    np.testing.assert_array_equal(decode_audio(encode_audio(samples)), samples)
    assert encode_audio(np.array([0.5], np.float32)) == "AEA="  # 16384 little-endian
    assert decode_audio(encode_audio(np.array([2.0, -2.0], np.float32))).tolist() == [32767 / 32768, -1.0]


def test_pcm16_encoding_rounds_and_clips_as_the_textbook_formula():
    rng = np.random.default_rng(3)
    samples = np.concatenate([rng.uniform(-1.2, 1.2, 4801), [1.0, -1.0, 32767 / 32768, 0.5 / 32768, -0.5 / 32768,
                                                              1.5 / 32768, -1e-9, 0.0]]).astype(np.float32)
    reference = np.rint(np.clip(samples.astype(np.float64), -1.0, 32767 / 32768) * 32768).astype("<i2")
    assert base64.b64decode(encode_audio(samples)) == reference.tobytes()
    assert encode_audio(samples.reshape(1, -1)) == encode_audio(samples)  # (1, n) frames as they come


def test_bad_audio_payloads_are_remote_errors():
    with pytest.raises(RemoteProtocolError, match="not valid base64"):
        decode_audio("@@@@")
    with pytest.raises(RemoteProtocolError, match=r"even number of bytes \(got 3\)"):
        decode_audio("AAAA")


def test_g711_is_bit_exact_with_the_ccitt_reference():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    pcm = np.arange(-32768, 32768, dtype=np.int16)
    np.testing.assert_array_equal(ulaw_encode(pcm), np.frombuffer(audioop.lin2ulaw(pcm.tobytes(), 2), np.uint8))
    np.testing.assert_array_equal(alaw_encode(pcm), np.frombuffer(audioop.lin2alaw(pcm.tobytes(), 2), np.uint8))
    codes = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(ulaw_decode(codes), np.frombuffer(audioop.ulaw2lin(codes.tobytes(), 2), np.int16))
    np.testing.assert_array_equal(alaw_decode(codes), np.frombuffer(audioop.alaw2lin(codes.tobytes(), 2), np.int16))


def test_g711_quantisation_snr_on_a_tone():
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)).astype(np.float32)
    for fmt in ("g711_ulaw", "g711_alaw"):
        decoded = decode_audio(encode_audio(tone, fmt), fmt)
        snr_db = 10 * np.log10(np.sum(tone**2) / np.sum((decoded - tone) ** 2))
        assert snr_db > 35, (fmt, snr_db)


def test_every_event_type_has_a_class_named_after_it():
    assert ev.CLIENT_EVENTS["conversation.item.truncate"].__name__ == "ConversationItemTruncate"
    assert len(ev.CLIENT_EVENTS) == 12 and len(ev.SERVER_EVENTS) >= 37
    event = ev.ConversationItemTruncate(item_id="i", content_index=0, audio_end_ms=120)  # type: ignore[attr-defined]
    assert event.to_dict() == {"type": "conversation.item.truncate", "item_id": "i", "content_index": 0,
                               "audio_end_ms": 120}
