"""Google Gemini ``generateContent``: the caller's side, the upstream's side and passthrough (see ``contract``).

``request``: parse a caller's body; ``response``: render a caller's answer;
``stream``: render a caller's stream; ``errors``. The upstream's side:
``upstream`` renders the request and reads the answer, ``upstream_stream``
reads or passes through the stream; ``parts`` holds the content parts, usage
and finish reasons both sides share, ``grounding`` the searches and
citations.
"""

from gateway.protocols.gemini.errors import parse_error, render_error, render_stream_error
from gateway.protocols.gemini.request import parse_request
from gateway.protocols.gemini.response import render_response
from gateway.protocols.gemini.stream import StreamRenderer
from gateway.protocols.gemini.upstream import parse_response, passthrough_request, render_request
from gateway.protocols.gemini.upstream_stream import PASSTHROUGH, StreamParser

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
