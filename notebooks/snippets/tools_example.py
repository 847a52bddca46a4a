# A Realtime turn that calls a Python tool: the turn table shows the tool's own run time ("tool") and
# what the round trip added before the answer's first audio ("tool round trip").
# Runs offline against the local server's tools responder; with url="openai" (OPENAI_API_KEY set) the same
# graph asks OpenAI. Run it as `python notebooks/snippets/tools_example.py`.
import asyncio

import vkit
from vkit import filters, sinks, sources
from vkit.data import sample_path
from vkit.realtime import Realtime, conversation


async def get_weather(city: str = "Paris") -> dict:
    """Get the current weather in a city."""
    await asyncio.sleep(0.25)  # a slow weather service
    return {"city": city, "sky": "clear", "temperature_c": 21}


graph = (
    sources.File(sample_path("two_turns.wav"), pace="realtime")
    | filters.Resample(sample_rate_hz=24_000)
    | Realtime(tools=[get_weather], tool_choice="required", server={"responder": "tools", "output_pace": 1.0})
    | sinks.VirtualSpeaker()
)
session = vkit.run(graph)  # real time: on clock="virtual" a tool is work the clock waits for, so it takes 0 ms
print(session.turns)  # columns: ... tool, tool round trip, first audio played, voice-to-voice, barge-in
for line in conversation(session.events):  # what was said, with when its text arrived (ms)
    print(line)
