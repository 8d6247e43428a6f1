"""A loopback HTTP server standing in for GitHub's API: it records every request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class GithubStub:
    url: str
    status: int = 204
    requests: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def github_stub(status: int = 204) -> Iterator[GithubStub]:
    stub = GithubStub(url="", status=status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            stub.requests.append({"path": self.path, "headers": dict(self.headers),
                                  "body": json.loads(self.rfile.read(length) or b"null")})
            self.send_response(stub.status)
            body = b"" if stub.status == 204 else b'{"message": "Bad credentials"}'
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
