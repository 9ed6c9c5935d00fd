"""A whole-body deadline for the Django side under Gunicorn (WSGI middleware).

Gunicorn's gthread worker reads a request's body in the thread that runs the
request, from a blocking socket, and has no setting that bounds it: a body sent
at one byte a second holds a thread (of 4 a process) for as long as its client
likes. A socket timeout does not help: it bounds each read, and a trickle never
leaves a read waiting long. So the body is read here, before Django sees the
request, under a timer: if it has not all arrived ``seconds`` after the read
began, the timer shuts the socket's read side, the waiting read returns at once,
and the answer is a 408 (application/problem+json, the API's error shape). With
its read side shut, the connection is not reused: Gunicorn closes it right after
the answer (which it still labels keep-alive: an application cannot tell it
otherwise). nginx in front buffers bodies itself (deploy/nginx.conf), but a server
must not depend on what is in front of it.

Bodies are kept in memory up to SPOOL_BYTES and in a temporary file past that,
as Django's own upload handling would.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
from collections.abc import Iterable
from typing import IO, Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from movies.problems import PROBLEM_CONTENT_TYPE, Problem

SPOOL_BYTES = 1024 * 1024
READ_BYTES = 64 * 1024


class BodyDeadline:
    """WSGI middleware: a request's body arrives within ``seconds``, or a 408."""

    def __init__(self, app: WSGIApplication, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        sock = environ.get("gunicorn.socket")
        # Only HTTP/1 owns its socket: an HTTP/2 connection carries other streams.
        http1 = str(environ.get("SERVER_PROTOCOL", "")).startswith("HTTP/1.")
        if not (isinstance(sock, socket.socket) and http1 and _has_body(environ)):
            return self.app(environ, start_response)
        body = _Watched(sock, self.seconds).read(environ["wsgi.input"])
        if body is None:
            detail = f"The request body did not arrive within {self.seconds:g} seconds."
            payload = Problem(408, detail).body()
            headers = [
                ("Content-Type", PROBLEM_CONTENT_TYPE),
                ("Content-Length", str(len(payload))),
            ]
            start_response("408 Request Timeout", headers)
            return [payload]
        environ["wsgi.input"] = body
        environ["CONTENT_LENGTH"] = str(body.seek(0, 2))
        body.seek(0)
        return self.app(environ, start_response)


def _has_body(environ: WSGIEnvironment) -> bool:
    if "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower():
        return True
    length = str(environ.get("CONTENT_LENGTH") or "0")
    return not length.isdigit() or int(length) > 0


class _Watched:
    """One body read, with a timer that ends it at the deadline."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        self.done = False
        self.expired = False
        self.timer = threading.Timer(seconds, self._expire)
        self.timer.daemon = True

    def read(self, stream: Any) -> IO[bytes] | None:
        """The whole body, or None if it did not arrive in time."""
        body = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - returned
        self.timer.start()
        try:
            while chunk := stream.read(READ_BYTES):
                body.write(chunk)
        except Exception:
            # A body cut short raises Gunicorn's own errors (NoMoreData, ...): after
            # the timer expired that is expected; otherwise it is not ours to hide.
            if not self._finish():
                body.close()
                raise
        if self._finish():
            body.close()
            return None
        return body

    def _expire(self) -> None:
        with self.lock:
            if self.done:
                return
            self.expired = True
            with contextlib.suppress(OSError):  # the client may have gone already
                self.sock.shutdown(socket.SHUT_RD)

    def _finish(self) -> bool:
        """Stops the timer; whether it had expired."""
        with self.lock:
            self.done = True
        self.timer.cancel()
        return self.expired
