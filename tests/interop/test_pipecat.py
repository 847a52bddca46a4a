"""Pipecat's ``OpenAIRealtimeLLMService`` in a minimal pipeline (no transport): audio frames queued in,
the service's ``TTSAudioRawFrame``s collected at the end."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from interop_helpers import RATE_HZ

from vkit.realtime.server import LocalServer
from vkit.units import float_to_pcm16_bytes, ms_to_samples

pytest.importorskip("pipecat")
frames = pytest.importorskip("pipecat.frames.frames")
realtime_llm = pytest.importorskip("pipecat.services.openai.realtime.llm")
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.pipeline.runner import PipelineRunner  # noqa: E402
from pipecat.pipeline.task import PipelineParams, PipelineTask  # noqa: E402
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor  # noqa: E402

pytestmark = pytest.mark.timeout(60)


class Collector(FrameProcessor):
    """The pipeline's last processor: keeps the frames that reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[Any] = []

    async def process_frame(self, frame: Any, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        self.frames.append(frame)
        await self.push_frame(frame, direction)

    def of(self, kind: type) -> list[Any]:
        return [f for f in self.frames if isinstance(f, kind)]


def _audio_frames(audio: Any) -> list[Any]:
    step = ms_to_samples(20, RATE_HZ)
    return [frames.InputAudioRawFrame(audio=float_to_pcm16_bytes(audio[s : s + step]), sample_rate=RATE_HZ,
                                      num_channels=1) for s in range(0, audio.size, step)]


def _run(body: Any, service_options: dict[str, Any] | None = None, **server_options: Any) -> Collector:
    async def main() -> Collector:
        async with LocalServer(**{"output_pace": 0, **server_options}) as server:
            service = realtime_llm.OpenAIRealtimeLLMService(api_key="dummy-local-key", base_url=server.url,
                                                            **(service_options or {}))
            collector = Collector()
            task = PipelineTask(Pipeline([service, collector]), params=PipelineParams(
                audio_in_sample_rate=RATE_HZ, audio_out_sample_rate=RATE_HZ), enable_rtvi=False)
            runner = asyncio.ensure_future(PipelineRunner(handle_sigint=False).run(task))
            try:
                await body(task, collector)
            finally:
                await task.cancel()
                await asyncio.wait_for(runner, 10)
            return collector

    return asyncio.run(main())


async def until(predicate: Any, timeout_s: float = 15.0) -> None:
    async def wait() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), timeout_s)


def test_a_server_vad_turn_streams_audio_out(turns_24k):
    async def body(task: Any, collector: Collector) -> None:
        await task.queue_frames(_audio_frames(turns_24k[0]))
        await until(lambda: collector.of(frames.LLMFullResponseEndFrame))

    collector = _run(body)
    audio = collector.of(frames.TTSAudioRawFrame)
    assert audio and sum(len(f.audio) for f in audio) > 0 and audio[0].sample_rate == RATE_HZ
    assert not collector.of(frames.ErrorFrame)


def test_barge_in_stops_the_answer(turns_24k):
    async def body(task: Any, collector: Collector) -> None:
        await task.queue_frames(_audio_frames(turns_24k[0]))
        await until(lambda: collector.of(frames.TTSAudioRawFrame))
        await task.queue_frames(_audio_frames(turns_24k[1]))
        await until(lambda: len(collector.of(frames.LLMFullResponseEndFrame)) >= 2)

    collector = _run(body, output_pace=1.0)
    assert len(collector.of(frames.ProposedUserStartedSpeakingFrame)) == 2  # the server's speech_started, twice
    assert not collector.of(frames.ErrorFrame)


def test_a_manual_turn_from_user_speaking_frames(turns_24k):
    events = realtime_llm.events
    settings = realtime_llm.OpenAIRealtimeLLMService.Settings(session_properties=events.SessionProperties(
        audio=events.AudioConfiguration(input=events.AudioInput(turn_detection=False))))

    async def body(task: Any, collector: Collector) -> None:
        await task.queue_frames([frames.UserStartedSpeakingFrame(), *_audio_frames(turns_24k[0]),
                                 frames.UserStoppedSpeakingFrame()])  # commit + response.create
        await until(lambda: collector.of(frames.LLMFullResponseEndFrame))

    collector = _run(body, {"settings": settings})
    assert collector.of(frames.TTSAudioRawFrame) and not collector.of(frames.ProposedUserStartedSpeakingFrame)
    assert not collector.of(frames.ErrorFrame)


def test_text_output(turns_24k):
    settings = realtime_llm.OpenAIRealtimeLLMService.Settings(
        session_properties=realtime_llm.events.SessionProperties(output_modalities=["text"]))

    async def body(task: Any, collector: Collector) -> None:
        await task.queue_frames(_audio_frames(turns_24k[0]))
        await until(lambda: collector.of(frames.LLMFullResponseEndFrame))

    collector = _run(body, {"settings": settings})
    assert collector.of(frames.LLMTextFrame) and not collector.of(frames.TTSAudioRawFrame)
