"""An upstream answer's status line and header block, read without the e-mail parser.

``http.client`` hands the header block to ``email.parser``, which costs more than the
rest of reading an answer's head. ``Response`` reads it as ``http.client.HTTPResponse``
does and builds the same ``HTTPMessage`` straight from the lines when every line is a
plain ``Name: value`` field; any other block (a folded line, a line that is no field)
goes to the e-mail parser as before, so what urllib3 and the gateway see is the same.
"""

from __future__ import annotations

import email.parser
import http.client
import re
from typing import Any

# A field line as the e-mail parser reads one: a name of printable characters but ':', then ':'.
_FIELD = re.compile(r"[\041-\071\073-\176]+:")


def parse_headers(fp: Any) -> http.client.HTTPMessage:
    """``http.client.parse_headers(fp)``: the same message, without the e-mail parser for plain fields."""
    lines = http.client._read_headers(fp)  # type: ignore[attr-defined]  # its line and count limits
    fields = []
    for raw in lines:  # each ends at its first \n (or the stream's end)
        if raw in (b"\r\n", b"\n", b""):
            break
        line = raw.decode("iso-8859-1")
        head = _FIELD.match(line)
        body = line[:-2] if line.endswith("\r\n") else line.rstrip("\n")
        if head is None or line.startswith("From ") or "\r" in body:  # the parser's own reading, then
            return email.parser.Parser(_class=http.client.HTTPMessage).parsestr(b"".join(lines).decode("iso-8859-1"))
        fields.append((line[:head.end() - 1], body[head.end():].lstrip(" \t")))
    msg = http.client.HTTPMessage()
    for name, value in fields:
        msg[name] = value
    msg.set_payload("")  # what the e-mail parser leaves after the blank line
    return msg


class Response(http.client.HTTPResponse):
    """``http.client.HTTPResponse`` with ``parse_headers`` above; the rest of ``begin`` is the library's."""

    def begin(self) -> None:
        if self.headers is not None:
            return
        while True:
            version, status, reason = self._read_status()
            if status != http.client.CONTINUE:
                break
            http.client._read_headers(self.fp)  # a 100 answer's fields
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)
        self.headers = self.msg = parse_headers(self.fp)
        tr_enc = self.headers.get("transfer-encoding")
        self.chunked = bool(tr_enc and tr_enc.lower() == "chunked")
        if self.chunked:
            self.chunk_left = None
        self.will_close = self._check_close()
        self.length = None
        length = self.headers.get("content-length")
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                self.length = None
            else:
                if self.length < 0:
                    self.length = None
        if (status in (http.client.NO_CONTENT, http.client.NOT_MODIFIED) or 100 <= status < 200
                or self._method == "HEAD"):
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True
