# A Realtime turn that calls a Python tool: the turn table shows the tool's own run time ("tool") and
# what the round trip added before the answer's first audio ("tool round trip").
# Needs a server that makes function calls: OpenAI (url="openai", OPENAI_API_KEY set), or the local
# server's tools responder once it lands (server={"responder": "tools"}).
import asyncio

import vkit
from vkit import filters, sinks, sources
from vkit.realtime import Realtime, conversation


async def get_weather(city: str = "Paris") -> dict:
    """Get the current weather in a city."""
    await asyncio.sleep(0.25)  # a slow weather service
    return {"city": city, "sky": "clear", "temperature_c": 21}


graph = (
    sources.File("data/two_turns.wav", pace="realtime")
    | filters.Resample(sample_rate_hz=24_000)
    | Realtime(tools=[get_weather], tool_choice="required", server={"responder": "tools", "output_pace": 1.0})
    | sinks.VirtualSpeaker()
)
session = vkit.run(graph)
print(session.turns)  # columns: ... tool, tool round trip, first audio played, voice-to-voice, barge-in
for line in conversation(session.events):  # what was said, with when its text arrived (ms)
    print(line)
