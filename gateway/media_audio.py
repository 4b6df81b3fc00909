"""Audio: text to speech (billed per character) and transcription (billed per second of audio).

Transcription seconds, in order of trust: the upstream's ``duration``
(``verbose_json``) or ``usage.seconds`` (``usage.type == "duration"``); then the
file's own length (exact for WAV); then the file size at 128 kbit/s. For
``whisper-*`` rows a ``json`` or ``text`` request is sent upstream as
``verbose_json`` so that the duration comes back, and rendered down to what
the caller asked for. The reservation assumes the file is no denser than
8 kbit/s (exact for WAV), so it bounds every case above.
"""

from __future__ import annotations

import io
import math
import wave
from decimal import Decimal
from typing import Any

from core import ratecard
from core.errors import InvalidRequest
from core.ratecard import ModelCard
from gateway.call import Call
from gateway.canonical import Usage
from gateway.media_call import Form, Job, resolve
from gateway.media_upstream import Outbound, Reply
from gateway.pipeline import Answer

MIN_BYTES_PER_S = 1000  # 8 kbit/s: a floor for compressed speech, so size / this bounds the length
TYPICAL_BYTES_PER_S = 16000  # 128 kbit/s: the usual MP3/M4A rate, for an estimate when nothing is reported
UPGRADE_FORMATS = ("json", "text")


def speech(call: Call, body: dict[str, Any]) -> Job:
    """``POST /v1/audio/speech``: JSON in, the upstream's audio bytes and content type out."""
    card = resolve(call, body.get("model"), kinds=("audio",), capability="tts", what="speech")
    text = body.get("input")
    if not isinstance(text, str) or not text:
        raise InvalidRequest("input: a non-empty string is required", param="input")
    if not body.get("voice"):
        raise InvalidRequest("voice: field required", param="voice")
    chars = len(text)
    cost = ratecard.chars_cost_credits(card, chars)

    def finish(reply: Reply) -> Answer:
        ctype = reply.headers.get("content-type") or "audio/mpeg"
        return Answer(reply.body, Usage(input_tokens=chars), cost, ctype)

    return Job(card, cost, Outbound(path="audio/speech", json=body), finish, input_tokens=chars)


def wav_seconds(data: bytes) -> Decimal | None:
    """The exact length of a WAV file, or None when ``data`` is not one."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    try:
        with wave.open(io.BytesIO(data)) as w:
            rate = w.getframerate()
            return Decimal(w.getnframes()) / Decimal(rate) if rate else None
    except (wave.Error, EOFError):
        return None


def reported_seconds(data: dict[str, Any]) -> Decimal | None:
    """Seconds of audio the upstream says it transcribed, if it says."""
    for value in (data.get("duration"), _usage_seconds(data.get("usage"))):
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            try:
                sec = Decimal(str(value))
            except ArithmeticError:
                continue
            if sec.is_finite() and sec >= 0:
                return sec
    return None


def _usage_seconds(usage: Any) -> Any:
    if isinstance(usage, dict) and usage.get("type") == "duration":
        return usage.get("seconds")
    return None


def transcription(call: Call, form: Form) -> Job:
    """``POST /v1/audio/transcriptions``: multipart in, the caller's ``response_format`` out."""
    card = resolve(call, form.field("model"), kinds=("audio",), capability="stt", what="transcription")
    fields, files = form.fields, form.files
    audio = next((f for name, f in files if name == "file"), None)
    if audio is None or not audio[1]:
        raise InvalidRequest("file: an audio file is required", param="file")
    exact = wav_seconds(audio[1])
    upper = exact if exact is not None else Decimal(len(audio[1])) / MIN_BYTES_PER_S
    fallback = exact if exact is not None else Decimal(len(audio[1])) / TYPICAL_BYTES_PER_S
    estimate = ratecard.seconds_cost_credits(card, Decimal(math.ceil(upper)))
    fmt = form.field("response_format") or "json"
    upgrade = fmt in UPGRADE_FORMATS and card.id.startswith("whisper")
    if upgrade:
        fields = [(k, v) for k, v in fields if k != "response_format"] + [("response_format", "verbose_json")]
    out = Outbound(path="audio/transcriptions", form=fields, files=files)

    def finish(reply: Reply) -> Answer:
        if not upgrade and fmt not in ("json", "verbose_json"):
            ctype = reply.headers.get("content-type") or "text/plain; charset=utf-8"
            return _billed(card, fallback, reply.body, ctype)
        data = reply.json()
        seconds = reported_seconds(data)
        seconds = fallback if seconds is None else seconds
        if not upgrade:
            return _billed(card, seconds, data)
        said = data.get("text")
        text = said if isinstance(said, str) else ""
        if fmt == "text":
            return _billed(card, seconds, text + "\n", "text/plain; charset=utf-8")
        usage = {"type": "duration", "seconds": math.ceil(seconds)}
        return _billed(card, seconds, {"text": text, "usage": usage})

    return Job(card, estimate, out, finish, input_tokens=math.ceil(upper))


def _billed(card: ModelCard, seconds: Decimal, body: Any, ctype: str = "application/json") -> Answer:
    return Answer(body, Usage(input_tokens=math.ceil(seconds)), ratecard.seconds_cost_credits(card, seconds), ctype)
