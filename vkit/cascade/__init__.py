"""The cascade: STT -> LLM -> TTS as stages, each stamping its marks on the session clock, and the local
server that speaks their APIs (``/v1/responses`` by WebSocket mode and HTTP streaming, ``/v1/audio/speech``)."""

from vkit.cascade.llm import LLM
from vkit.cascade.stt import STT
from vkit.cascade.tts import TTS

__all__ = ["STT", "LLM", "TTS"]
