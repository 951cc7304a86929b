"""A real SMTP server on loopback for tests, with the standard library only (aiosmtpd is not
among the pinned test requirements and cannot be fetched offline): enough of RFC 5321 for
``smtplib`` (EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT). It records each
message parsed, and can answer a temporary failure to act out an outage. Waiting is on a
condition variable, never a blind sleep.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from support.server import free_port


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        return str(body.get_content())  # type: ignore[attr-defined]


class SmtpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.mails: list[Mail] = []
        self.attempts = 0  # MAIL commands seen, answered or refused
        self._cond = threading.Condition()
        self._refusing = False
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def send(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")
                self.wfile.flush()

            def handle(self) -> None:
                self.send("220 test-smtp ready")
                sender, recipients = "", []
                while True:
                    raw = self.rfile.readline()
                    if not raw:
                        return
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    verb = line[:4].upper()
                    if verb == "EHLO":
                        self.send("250-test-smtp")
                        self.send("250 8BITMIME")
                    elif verb == "HELO":
                        self.send("250 test-smtp")
                    elif verb == "MAIL":
                        with server._cond:
                            server.attempts += 1
                            refusing = server._refusing
                            server._cond.notify_all()
                        if refusing:
                            self.send("451 try again later")
                            continue
                        sender, recipients = line.split(":", 1)[1].strip().strip("<>"), []
                        self.send("250 OK")
                    elif verb == "RCPT":
                        recipients.append(line.split(":", 1)[1].strip().strip("<>"))
                        self.send("250 OK")
                    elif verb == "DATA":
                        self.send("354 end with <CRLF>.<CRLF>")
                        data = bytearray()
                        while True:
                            chunk = self.rfile.readline()
                            if not chunk or chunk in (b".\r\n", b".\n"):
                                break
                            data += chunk[1:] if chunk.startswith(b"..") else chunk
                        message = BytesParser(policy=policy.default).parsebytes(bytes(data))
                        assert isinstance(message, EmailMessage)
                        with server._cond:
                            server.mails.append(Mail(sender, list(recipients), message))
                            server._cond.notify_all()
                        self.send("250 queued")
                    elif verb == "RSET":
                        sender, recipients = "", []
                        self.send("250 OK")
                    elif verb == "NOOP":
                        self.send("250 OK")
                    elif verb == "QUIT":
                        self.send("221 bye")
                        return
                    else:
                        self.send("502 not implemented")

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def refuse(self, refusing: bool = True) -> None:
        """Answer every following MAIL with a temporary failure (451), or stop doing so."""
        with self._cond:
            self._refusing = refusing

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def to(self, address: str) -> list[Mail]:
        with self._cond:
            return [m for m in self.mails if address in m.recipients]

    def wait_until(self, predicate: Callable[[SmtpServer], bool], timeout: float = 20) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout=timeout)
