"""The OpenAI Responses API as sans-I/O cores: the client side (request bodies, typed stream events,
``previous_response_id``) and the server side (a rule-based model answering with the API's event stream)."""

from vkit.responses.protocol import (
    ResponseCompleted,
    ResponseError,
    ResponsesClient,
    ResponseStarted,
    ServerSentEvents,
    TextDelta,
    ToolCall,
    encode_sse,
)
from vkit.responses.server import ResponsesServerSession, RuleModel, Timed

__all__ = ["ResponsesClient", "ResponseStarted", "TextDelta", "ToolCall", "ResponseCompleted", "ResponseError",
           "ServerSentEvents", "encode_sse", "ResponsesServerSession", "RuleModel", "Timed"]
