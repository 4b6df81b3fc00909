"""Protocol codecs: pure parse and render for every protocol the gateway speaks.

One package per protocol (``anthropic``, ``openai_chat``, ``openai_responses``,
``gemini``), each with ``request``, ``response``, ``stream`` and ``errors``
modules, meeting the ``contract`` (``Codec``, ``UpstreamCodec``); ``registry``
maps a protocol's name to its codec. Shared by all: ``fields`` (reading typed
fields, naming the bad one), ``common`` (tool names, stop reasons, usage,
JSON), ``upstream_error`` (any vendor's error, redacted) and ``passthrough``
(an upstream's stream forwarded to a caller of its own protocol).
"""
