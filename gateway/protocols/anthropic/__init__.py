"""Anthropic Messages: the caller's side, the upstream's side and passthrough (see ``contract``).

``request``: parse a caller's body, render an upstream's (content blocks and
turns in ``blocks``); ``response``: read an upstream's answer, render a
caller's; ``stream``: the SSE events both ways and passthrough; ``errors``.
"""

from gateway.protocols.anthropic.errors import parse_error, render_error, render_stream_error
from gateway.protocols.anthropic.request import parse_request, passthrough_request, render_request
from gateway.protocols.anthropic.response import parse_response, render_response
from gateway.protocols.anthropic.stream import PASSTHROUGH, StreamParser, StreamRenderer

__all__ = [
    "PASSTHROUGH",
    "StreamParser",
    "StreamRenderer",
    "parse_error",
    "parse_request",
    "parse_response",
    "passthrough_request",
    "render_error",
    "render_request",
    "render_response",
    "render_stream_error",
]
