"""Offline speech engines shared by the local server and the cascade stages: recognition
(pocketsphinx, in a worker process), synthesis (espeak-ng / flite) and the rule-based reply."""

from vkit.speech.recognise import Recogniser
from vkit.speech.replies import answer
from vkit.speech.synthesise import OUTPUT_RATE_HZ, Speech

__all__ = ["Recogniser", "Speech", "answer", "OUTPUT_RATE_HZ"]
