"""Local notification receivers for alert tests: a webhook receiver (http.server in a thread)
and an SMTP sink (a minimal SMTP server on socketserver), both on 127.0.0.1."""

from __future__ import annotations

import email
import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    """Collects POSTed JSON bodies; ``fail_first`` requests answer 500 (retry tests)."""

    def __init__(self, fail_first: int = 0):
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.requests = 0
        self.fail_first = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n)
                outer.requests += 1
                if outer.requests <= outer.fail_first:
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"try again")
                    return
                outer.bodies.append(json.loads(body))
                outer.headers.append(dict(self.headers))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self, alert_id: int | None = None) -> list[str]:
        return [b["event"] for b in self.bodies if alert_id is None or b["alert_id"] == alert_id]


class SmtpSink:
    """Accepts every message (HELO/EHLO, MAIL, RCPT, DATA, QUIT) and keeps it parsed."""

    def __init__(self):
        self.messages: list[email.message.Message] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write((line + "\r\n").encode())

            def handle(self):
                self.reply("220 sink ready")
                while True:
                    raw = self.rfile.readline()
                    if not raw:
                        return
                    cmd = raw.decode(errors="replace").strip()
                    verb = cmd.split(" ", 1)[0].upper()
                    if verb in ("HELO", "EHLO"):
                        self.reply("250 sink")
                    elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                        self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 end with .")
                        lines = []
                        while True:
                            ln = self.rfile.readline()
                            if ln in (b".\r\n", b".\n", b""):
                                break
                            lines.append(ln[1:] if ln.startswith(b"..") else ln)
                        outer.messages.append(email.message_from_bytes(b"".join(lines)))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 not implemented")

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> SmtpSink:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
