"""A raw HTTP/1.1 upstream for the provider tests: every request on a connection is answered with one
chunked event stream, sent in several writes, in the clear or over TLS."""

from __future__ import annotations

import socket
import ssl
import threading


def framed(parts: list[bytes], *, ext: bool = False, trailers: bytes = b"") -> bytes:
    """``parts`` as an HTTP/1.1 chunked body, with chunk extensions and trailers if asked."""
    out = b"".join(b"%x%s\r\n%s\r\n" % (len(p), b";name=v" if ext else b"", p) for p in parts)
    return out + b"0\r\n" + trailers + b"\r\n"


class RawUpstream:
    """Answers every request with ``body`` (already framed); counts the connections it accepted."""

    def __init__(self, body: bytes, tls: ssl.SSLContext | None = None) -> None:
        self.body = body
        self.tls = tls
        self.accepted = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn: socket.socket) -> None:
        try:
            self._answer(self.tls.wrap_socket(conn, server_side=True) if self.tls else conn)
        except OSError:  # a refused handshake, a client that hung up mid-body
            pass
        finally:
            conn.close()

    def _answer(self, conn: socket.socket) -> None:
        f = conn.makefile("rb")
        while True:
            length = 0
            line = f.readline()
            if not line:
                return
            while line not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                line = f.readline()
            f.read(length)
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                         b"transfer-encoding: chunked\r\n\r\n")
            for i in range(0, len(self.body), 40):  # in several writes
                conn.sendall(self.body[i:i + 40])

    def close(self) -> None:
        self.sock.close()
