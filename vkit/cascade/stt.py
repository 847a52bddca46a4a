"""``STT``: from VAD-segmented user audio to a final transcript per utterance."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Literal

import numpy as np

from vkit.errors import ConfigError, got
from vkit.frames import AudioFrame, SpeechStarted, SpeechStopped, SttTranscript
from vkit.graph import Pipe
from vkit.units import samples_to_ms

__all__ = ["STT"]


class STT(Pipe):
    """Speech to text, one utterance at a time: the frames between a VAD's ``SpeechStarted`` and
    ``SpeechStopped`` (from the started event's sample, padding included) make one utterance, and a final
    ``SttTranscript`` goes downstream, stamped when the text is known.

    ``engine="pocketsphinx"``: offline, in a worker process (``vkit.speech.Recogniser``), recognised when speech
    stops; it does not stream, so there are no interim results. ``engine="realtime"``: a Realtime
    transcription session (``session.type: "transcription"``, ``model``): the utterance's audio streams out
    while the user speaks, is committed when speech stops, and interim transcripts (``final=False``) arrive
    as the server streams them; ``url=None`` is the embedded local server (its pocketsphinx), "openai" uses
    ``OPENAI_API_KEY``. The input audio is consumed (the answer's audio is what flows on).
    """

    accepts = (AudioFrame, SpeechStarted, SpeechStopped)

    def __init__(self, engine: Literal["pocketsphinx", "realtime"] = "pocketsphinx", *, url: str | None = None,
                 model: str = "gpt-4o-transcribe", api_key: str | None = None, max_utterance_s: float = 30.0) -> None:
        if engine not in ("pocketsphinx", "realtime"):
            raise ConfigError(f"STT engine must be 'pocketsphinx' or 'realtime' {got(engine)}")
        if url is not None and engine != "realtime":
            raise ConfigError(f"url= is for engine='realtime' {got(engine)}")
        if max_utterance_s <= 0:
            raise ConfigError(f"max_utterance_s must be > 0 {got(max_utterance_s)}")
        self.engine = engine
        self.url = "wss://api.openai.com/v1/realtime" if url == "openai" else url
        self.model = model
        self._api_key = api_key
        self.max_utterance_s = max_utterance_s
        self.num_utterances = 0

    def __repr__(self) -> str:
        return f"STT(engine={self.engine!r}, url={self.url!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_api_key": None}

    def describe(self) -> dict[str, Any]:
        return {"engine": self.engine, "url": self.url or "local", "model": self.model,
                "max_utterance_s": self.max_utterance_s}

    async def run(self, ctx: Any) -> None:
        if self.engine == "realtime":
            from vkit.cascade.transcription import run_transcription

            await run_transcription(self, ctx)
            return
        from vkit.speech import Recogniser

        loop = asyncio.get_running_loop()
        recogniser = await loop.run_in_executor(None, Recogniser)
        frames: deque[AudioFrame] = deque()
        started: SpeechStarted | None = None
        pending: set[asyncio.Task[None]] = set()
        try:
            async for item in ctx:
                if isinstance(item, AudioFrame):
                    if item.stream != "input":
                        await ctx.emit(item)
                        continue
                    frames.append(item)
                    limit = int(self.max_utterance_s * item.sample_rate_hz) + item.num_samples
                    while frames and frames[-1].end_sample - frames[0].end_sample > limit:
                        frames.popleft()
                elif isinstance(item, SpeechStarted):
                    started = item
                elif isinstance(item, SpeechStopped):
                    audio, rate = _segment(frames, started.sample if started else item.sample - 1, item.sample)
                    started = None
                    if audio.size:
                        task = asyncio.ensure_future(self._recognise(ctx, recogniser, audio, rate, item))
                        pending.add(task)
                        task.add_done_callback(pending.discard)
            await asyncio.gather(*pending)
        finally:
            for task in pending:
                task.cancel()
            await loop.run_in_executor(None, recogniser.close)

    async def _recognise(self, ctx: Any, recogniser: Any, audio: np.ndarray, rate: int, stop: SpeechStopped) -> None:
        text = await asyncio.get_running_loop().run_in_executor(None, recogniser.transcribe, audio, rate)
        self.num_utterances += 1
        await ctx.emit(SttTranscript(t_ns=ctx.clock.now_ns(), text=text, final=True,
                                  speech_end_t_ns=stop.speech_end_t_ns or stop.sample_t_ns,
                                  audio_ms=samples_to_ms(audio.size, rate), engine=self.engine))


def _segment(frames: deque[AudioFrame], start_sample: int, end_sample: int) -> tuple[np.ndarray, int]:
    """Mono samples of ``[start_sample, end_sample)`` from the buffered frames."""
    parts, rate = [], 16_000
    for frame in frames:
        rate = frame.sample_rate_hz
        lo, hi = max(start_sample, frame.start_sample), min(end_sample, frame.end_sample)
        if lo < hi:
            parts.append(frame.samples.mean(axis=0)[lo - frame.start_sample:hi - frame.start_sample])
    return (np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)), rate
