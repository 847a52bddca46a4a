"""The cascade: STT -> LLM -> TTS as stages, and the local server that speaks their APIs."""
