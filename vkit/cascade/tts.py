"""``TTS``: the LLM's streamed text in, audio out, sentence by sentence: a sentence is synthesised as soon
as it is complete, so the first audio does not wait for the whole answer."""

from __future__ import annotations

import asyncio
import os
import re
from contextlib import AsyncExitStack
from typing import Any, Literal

import numpy as np

from vkit.deprecation import renamed_keyword
from vkit.errors import ConfigError, RemoteProtocolError, got
from vkit.frames import AudioFrame, LlmDone, LlmText, SpeechSynthesised
from vkit.graph import Pipe
from vkit.stage import StreamFormat
from vkit.units import ms_to_samples, pcm16_bytes_to_float

__all__ = ["TTS", "split_sentences"]

OUTPUT_RATE_HZ = 24_000
OPENAI_BASE_URL = "https://api.openai.com/v1"
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


def split_sentences(text: str) -> tuple[list[str], str]:
    """Complete sentences at the front of ``text`` (ended by . ! ? ; : and a space), and the rest."""
    parts = _SENTENCE_END.split(text)
    return [p for p in parts[:-1] if p.strip()], parts[-1]


class TTS(Pipe):
    """Text to speech on the "output" stream at 24 kHz, in ``frame_ms`` frames.

    ``engine="local"``: espeak-ng or flite in-process (``vkit.speech.Speech``, in a thread).
    ``engine="http"``: a ``/v1/audio/speech`` endpoint streaming PCM: ``url=None`` the embedded local
    server, "openai" (``OPENAI_API_KEY``; ``model``, ``voice``) or a base URL ``http(s)://.../v1``.
    Each sentence's first audio is stamped by a ``SpeechSynthesised`` event (with its characters, for cost).
    """

    accepts = (LlmText, LlmDone)

    def __init__(self, engine: Literal["local", "http"] = "local", *, url: str | None = None,
                 model: str = "gpt-4o-mini-tts", voice: str = "alloy", local_engine: str | None = None,
                 api_key: str | None = None, frame_ms: int = 40,
                 chunk_ms: int | None = None) -> None:
        frame_ms = renamed_keyword("TTS", "chunk_ms", "frame_ms", chunk_ms, frame_ms)
        if engine not in ("local", "http"):
            raise ConfigError(f"TTS engine must be 'local' or 'http' {got(engine)}")
        if not 10 <= frame_ms <= 200:
            raise ConfigError(f"frame_ms must be in [10, 200] {got(frame_ms)}")
        self.engine = engine
        self.url = OPENAI_BASE_URL if url == "openai" else url
        self.model = model
        self.voice = voice
        self.local_engine = local_engine
        self._api_key = api_key
        self.frame_ms = frame_ms
        self.output_position = 0

    def __repr__(self) -> str:
        return f"TTS(engine={self.engine!r}, url={self.url!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_api_key": None}

    def describe(self) -> dict[str, Any]:
        return {"engine": self.engine, "url": self.url or "local", "model": self.model, "voice": self.voice,
                "frame_ms": self.frame_ms, "sample_rate_hz": OUTPUT_RATE_HZ}

    def configure(self, fmt: StreamFormat) -> StreamFormat:
        return StreamFormat(OUTPUT_RATE_HZ, 1)

    async def run(self, ctx: Any) -> None:
        async with AsyncExitStack() as stack:
            synthesise = await self._open(stack)
            queue: asyncio.Queue[tuple[str, LlmText | LlmDone, bool, int] | None] = asyncio.Queue()
            speaker = asyncio.ensure_future(self._speak(ctx, queue, synthesise))
            try:
                text, first = "", True
                async for item in ctx:
                    if speaker.done():
                        break
                    text += item.text if isinstance(item, LlmText) else ""
                    sentences, text = split_sentences(text)
                    if isinstance(item, LlmDone):
                        sentences, text = [*sentences, text] if text.strip() else sentences, ""
                    for sentence in sentences:
                        queue.put_nowait((sentence, item, first, ctx.clock.now_ns()))
                        first = False
                    if isinstance(item, LlmDone):
                        first = True
                queue.put_nowait(None)
                await speaker
            finally:
                speaker.cancel()

    async def _open(self, stack: AsyncExitStack) -> Any:
        loop = asyncio.get_running_loop()
        if self.engine == "local":
            from vkit.speech import Speech

            speech = Speech(self.local_engine)
            return lambda text: loop.run_in_executor(None, speech.synthesise, text)
        from vkit.responses.transport import HttpClient

        if self.url is None:
            from vkit.responses.local_server import CascadeServer

            local = await stack.enter_async_context(CascadeServer(tts_engine=self.local_engine))
            base, context, key = local.base_url, local.client_ssl_context(), None
        else:
            base, context = self.url.rstrip("/"), None
            key = self._api_key or os.environ.get("OPENAI_API_KEY")
        origin, path = base.split("/v1", 1)[0], base[len(base.split("/v1", 1)[0]):] + "/audio/speech"
        client = HttpClient(origin, headers={"authorization": f"Bearer {key}"} if key else {}, ssl_context=context)
        stack.push_async_callback(client.aclose)
        return lambda text: self._fetch(client, path, text)

    async def _fetch(self, client: Any, path: str, text: str) -> Any:
        status, chunks = await client.stream("POST", path, {"model": self.model, "voice": self.voice, "input": text,
                                                            "response_format": "pcm"})
        if status != 200:
            body = b"".join([c async for c in chunks])
            raise RemoteProtocolError(f"the speech endpoint answered {status}: {body[:200].decode(errors='replace')} "
                                      f"{got(status)}")
        return chunks

    async def _speak(self, ctx: Any, queue: asyncio.Queue[Any], synthesise: Any) -> None:
        step = ms_to_samples(self.frame_ms, OUTPUT_RATE_HZ)
        while (job := await queue.get()) is not None:
            sentence, source, first, ready_ns = job
            result = await synthesise(sentence)
            announced = False
            pending = b""

            async def emit(samples: np.ndarray, *, sentence: str = sentence, first: bool = first,
                           ready_ns: int = ready_ns, source: Any = source) -> None:
                nonlocal announced
                now_ns = ctx.clock.now_ns()
                if not announced:
                    ctx.publish(SpeechSynthesised(t_ns=now_ns, text=sentence, num_characters=len(sentence),
                                                  first=first, text_ready_t_ns=ready_ns,
                                                  response_id=source.response_id,
                                                  speech_end_t_ns=source.speech_end_t_ns))
                    announced = True
                await ctx.emit(AudioFrame.mono(samples, OUTPUT_RATE_HZ, start_sample=self.output_position,
                                               stream="output", t_ns=now_ns))
                self.output_position += samples.size

            if isinstance(result, np.ndarray):
                for offset in range(0, result.size, step):
                    await emit(result[offset:offset + step])
            else:
                async for chunk in result:
                    pending += chunk
                    usable = len(pending) // (2 * step) * (2 * step)
                    if usable:
                        await emit(pcm16_bytes_to_float(pending[:usable]))
                        pending = pending[usable:]
                if len(pending) >= 2:
                    await emit(pcm16_bytes_to_float(pending[:len(pending) // 2 * 2]))
