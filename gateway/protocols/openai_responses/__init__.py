"""OpenAI Responses: a caller's protocol only (see ``contract``); every upstream is reached by translation.

``request``: parse a caller's body; ``response``: render the answer;
``stream``: the typed stream events; ``errors``.
"""

from gateway.protocols.openai_responses.errors import render_error, render_stream_error
from gateway.protocols.openai_responses.request import parse_request, tool_namespaces
from gateway.protocols.openai_responses.response import render_response
from gateway.protocols.openai_responses.stream import StreamRenderer

__all__ = [
    "StreamRenderer",
    "parse_request",
    "render_error",
    "render_response",
    "render_stream_error",
    "tool_namespaces",
]
