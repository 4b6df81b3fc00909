#!/usr/bin/env python3
"""CPU per relayed event of reading an upstream's chunked event stream, one process, under gevent.

    .venv/bin/python bench/relay_read.py gateway     # UpstreamReply.chunks (dechunk + the idle timer)
    .venv/bin/python bench/relay_read.py urllib3     # urllib3's read1, as the bare forward reads

A loopback server sends 20,000 chunked events one at a time, each only after the reader has
taken the last, so every event is its own socket read; prints the process CPU per event
(the writer's share included: compare the two modes, not the absolute figure).
"""

from gevent import monkey

monkey.patch_all()

import socket  # noqa: E402 - after the patching
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import urllib3  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gateway.providers.base import UpstreamReply  # noqa: E402

N = 20000
EVENT = (b'data: {"id":"chatcmpl-x","object":"chat.completion.chunk","choices":[{"index":0,'
         b'"delta":{"content":" word"},"finish_reason":null}]}\n\n')


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "gateway"
    srv = socket.create_server(("127.0.0.1", 0))
    taken = gevent.event.Event()

    def serve() -> None:
        conn, _ = srv.accept()
        f = conn.makefile("rb")
        while f.readline() not in (b"\r\n", b""):
            pass
        f.read(2)
        conn.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/event-stream\r\n\r\n")
        for _ in range(N):
            taken.clear()
            conn.sendall(b"%x\r\n%s\r\n" % (len(EVENT), EVENT))
            taken.wait()
        conn.sendall(b"0\r\n\r\n")

    gevent.spawn(serve)
    resp = urllib3.PoolManager().urlopen(
        "POST", f"http://127.0.0.1:{srv.getsockname()[1]}/", body=b"{}", preload_content=False,
        decode_content=False, timeout=urllib3.Timeout(connect=5, read=30))
    t0, n = time.process_time(), 0
    pieces = UpstreamReply(resp).chunks() if mode == "gateway" else iter(lambda: resp.read1(65536), b"")
    for _ in pieces:
        n += 1
        taken.set()
    print(f"{mode}: {n} events, {(time.process_time() - t0) * 1e6 / N:.1f} µs CPU per event")


if __name__ == "__main__":
    main()
