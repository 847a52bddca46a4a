"""Turn detection: when the user's turn is over, decided after a VAD by a swappable policy.

``VAD() | TurnDetector("silence", silence_ms=500)`` ends a turn after a fixed silence;
``VAD() | TurnDetector("smart_turn", threshold=0.5, max_silence_ms=3000)`` asks Smart Turn v3.2 (a semantic,
audio-only end-of-turn model shipped in ``vkit/models``) at each pause. ``detect_turns`` runs the same
stages on an array, for evaluation.
"""

from vkit.filters.turn.detector import Pause, TurnDetector
from vkit.filters.turn.model import SmartTurnModel
from vkit.filters.turn.offline import TurnDecision, detect_turns
from vkit.filters.turn.policies import POLICIES, SilenceTurn, SmartTurn, TurnPolicy, Verdict

__all__ = ["TurnDetector", "TurnDecision", "detect_turns", "SilenceTurn", "SmartTurn", "SmartTurnModel",
           "TurnPolicy", "Verdict", "Pause", "POLICIES"]
