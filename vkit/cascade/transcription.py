"""The ``STT`` stage's Realtime engine: a transcription session over the Realtime client protocol.

Audio of an utterance is appended while the user speaks (from the VAD's ``SpeechStarted`` sample, the
look-back included), committed at ``SpeechStopped``; each committed item's transcription deltas become
interim ``SttTranscript``s and its ``.completed`` the final one, matched to the utterance by item id.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from contextlib import AsyncExitStack
from typing import Any

import numpy as np
import soxr
from websockets.asyncio.client import connect

from vkit.errors import ConfigError, RemoteProtocolError, got
from vkit.frames import AudioFrame, SpeechStarted, SpeechStopped, SttTranscript
from vkit.realtime import events as ev
from vkit.realtime.codec import encode_audio
from vkit.realtime.protocol import ClientProtocol
from vkit.units import samples_to_ms

WIRE_RATE_HZ = 24_000


def transcription_session(model: str) -> dict[str, Any]:
    """The GA ``session`` of a transcription session with vkit's own turns (no server VAD)."""
    return {"type": "transcription", "audio": {"input": {"format": {"type": "audio/pcm", "rate": WIRE_RATE_HZ},
                                                         "transcription": {"model": model}, "turn_detection": None}}}


async def run_transcription(stage: Any, ctx: Any) -> None:
    async with AsyncExitStack() as stack:
        url, headers = stage.url, {}
        if url is None:
            from vkit.realtime.server import LocalServer

            server = await stack.enter_async_context(LocalServer(responder="cascade"))
            url = server.url
        else:
            key = stage._api_key or os.environ.get("OPENAI_API_KEY")  # noqa: SLF001 - the stage's own secret
            if not key and "api.openai.com" in url:
                raise ConfigError(f"the Realtime transcription engine needs OPENAI_API_KEY {got(stage.url)}")
            if key:
                headers["Authorization"] = f"Bearer {key}"
        socket = await stack.enter_async_context(connect(url, additional_headers=headers, max_size=16 * 1024 * 1024,
                                                         compression=None, ping_interval=None))
        protocol = ClientProtocol("ga")
        await socket.send(protocol.send(ev.SessionUpdate(session=transcription_session(stage.model))))
        utterances: deque[SpeechStopped] = deque()  # committed, awaiting their item id
        by_item: dict[str, tuple[SpeechStopped, list[str], float]] = {}
        sent_ms: deque[float] = deque()
        reader = asyncio.ensure_future(_read(stage, ctx, socket, protocol, utterances, by_item, sent_ms))
        try:
            await _write(stage, ctx, socket, protocol, utterances, sent_ms, reader)
            while (utterances or by_item) and not reader.done():
                await asyncio.wait([reader], timeout=0.05)
            if reader.done():
                reader.result()
        finally:
            reader.cancel()


async def _write(stage: Any, ctx: Any, socket: Any, protocol: ClientProtocol, utterances: deque[SpeechStopped],
                 sent_ms: deque[float], reader: asyncio.Task[None]) -> None:
    frames: deque[AudioFrame] = deque()
    resampler: Any = None
    speaking_from: int | None = None  # next input sample to send while the user speaks
    num_sent = 0

    async def send(samples: np.ndarray, rate: int) -> None:
        nonlocal resampler, num_sent
        if resampler is None:
            resampler = soxr.ResampleStream(rate, WIRE_RATE_HZ, 1, dtype="float32")
        wire = resampler.resample_chunk(samples) if rate != WIRE_RATE_HZ else samples
        if wire.size:
            num_sent += wire.size
            await socket.send(protocol.send(ev.InputAudioBufferAppend(audio=encode_audio(wire))))

    async for item in ctx:
        if reader.done():
            reader.result()
        if isinstance(item, AudioFrame):
            if item.stream != "input":
                await ctx.emit(item)
                continue
            frames.append(item)
            while len(frames) > 1 and frames[-1].end_sample - frames[0].end_sample > stage.max_utterance_s * item.sample_rate_hz:
                frames.popleft()
            if speaking_from is not None:
                await send(item.samples.mean(axis=0)[max(speaking_from - item.start_sample, 0):], item.sample_rate_hz)
                speaking_from = item.end_sample
        elif isinstance(item, SpeechStarted):
            num_sent = 0
            for frame in frames:  # the look-back: from the started sample to now
                if frame.end_sample > item.sample:
                    await send(frame.samples.mean(axis=0)[max(item.sample - frame.start_sample, 0):], frame.sample_rate_hz)
            speaking_from = frames[-1].end_sample if frames else item.sample
        elif isinstance(item, SpeechStopped) and speaking_from is not None:
            speaking_from = None
            if samples_to_ms(num_sent, WIRE_RATE_HZ) >= 100:  # the protocol's minimum commit
                utterances.append(item)
                sent_ms.append(samples_to_ms(num_sent, WIRE_RATE_HZ))
                await socket.send(protocol.send(ev.InputAudioBufferCommit()))


async def _read(stage: Any, ctx: Any, socket: Any, protocol: ClientProtocol, utterances: deque[SpeechStopped],
                by_item: dict[str, tuple[SpeechStopped, list[str], float]], sent_ms: deque[float]) -> None:
    async for message in socket:
        event = protocol.receive(message)
        kind = event.type
        if kind == "error":
            raise RemoteProtocolError(f"the transcription session failed: {getattr(event, 'error', None)} {got(kind)}")
        if kind == "input_audio_buffer.committed" and utterances:
            by_item[event.item_id] = (utterances.popleft(), [], sent_ms.popleft())
        elif kind == "conversation.item.input_audio_transcription.delta" and event.item_id in by_item:
            stop, pieces, audio_ms = by_item[event.item_id]
            pieces.append(event.delta or "")
            await ctx.emit(SttTranscript(t_ns=ctx.clock.now_ns(), text="".join(pieces), final=False,
                                      speech_end_t_ns=stop.speech_end_t_ns or stop.sample_t_ns, audio_ms=audio_ms,
                                      engine=stage.model))
        elif kind == "conversation.item.input_audio_transcription.completed" and event.item_id in by_item:
            stop, _, audio_ms = by_item.pop(event.item_id)
            stage.num_utterances += 1
            await ctx.emit(SttTranscript(t_ns=ctx.clock.now_ns(), text=event.transcript or "", final=True,
                                      speech_end_t_ns=stop.speech_end_t_ns or stop.sample_t_ns, audio_ms=audio_ms,
                                      engine=stage.model))
