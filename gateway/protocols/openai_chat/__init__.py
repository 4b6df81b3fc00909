"""OpenAI Chat Completions: the caller's side, the upstream's side and passthrough (see ``contract``).

``request``: parse a caller's body, render an upstream's (messages in
``messages``); ``response``: read an upstream's answer, render a caller's;
``stream``: the chunks both ways and passthrough; ``errors``. Every
OpenAI-compatible vendor is read through this codec.
"""

from gateway.protocols.openai_chat.errors import parse_error, render_error, render_stream_error
from gateway.protocols.openai_chat.request import (
    include_usage,
    parse_request,
    passthrough_request,
    render_request,
)
from gateway.protocols.openai_chat.response import parse_response, render_response
from gateway.protocols.openai_chat.stream import PASSTHROUGH, StreamParser, StreamRenderer

__all__ = [
    "PASSTHROUGH",
    "StreamParser",
    "StreamRenderer",
    "include_usage",
    "parse_error",
    "parse_request",
    "parse_response",
    "passthrough_request",
    "render_error",
    "render_request",
    "render_response",
    "render_stream_error",
]
