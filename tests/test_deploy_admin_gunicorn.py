"""The admin's Gunicorn (deploy/gunicorn_admin.conf.py) against hostile clients, for
real on loopback: forged forwarding headers in its access log, bodies sent slowly."""

from __future__ import annotations

import re
import socket
import time

from tests import test_deploy_servers as deploy
from tests.test_deploy_servers import Launcher, Server, start_admin
from tests.test_deploy_servers import probe as new_probe

# The Gunicorn admin of tests/test_deploy_servers.py, on a site of this module's own.
launcher, workdir, django_env = deploy.launcher, deploy.workdir, deploy.django_env


def send(server: Server, request: bytes) -> bytes:
    """One raw request on its own connection; the whole answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as connection:
        connection.sendall(request)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    return reply


def logged_line(server: Server, marker: str) -> str:
    [line] = [line for line in server.wait_for_output(marker).splitlines() if marker in line]
    return line


def test_a_forged_x_forwarded_for_is_logged_escaped_beside_the_peer(
    django_env: dict[str, str], launcher: Launcher
) -> None:
    admin = start_admin(django_env, launcher, "admin-log")
    marker = new_probe()
    forged = '198.51.100.1" "GET /admin/ HTTP/1.1" 200 0 0ms "x\\\\'
    reply = send(
        admin,
        f"GET /admin/login/?probe={marker} HTTP/1.1\r\nHost: localhost\r\n"
        f'X-Forwarded-Proto: https\r\nX-Forwarded-For: {forged}\r\nUser-Agent: a "b"\r\n'
        "X-Request-ID: r1\r\nConnection: close\r\n\r\n".encode(),
    )
    assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]
    line = logged_line(admin, marker)
    assert line.startswith(f'127.0.0.1 "GET /admin/login/?probe={marker} HTTP/1.1" 200 ')
    assert line.endswith(
        ' "a \\"b\\"" client=127.0.0.1 '
        'forwarded_for="198.51.100.1\\" \\"GET /admin/ HTTP/1.1\\" 200 0 0ms \\"x\\\\\\\\" '
        'rid="r1"'
    ), line

    # A line break in a header cannot start a line of the log: Gunicorn refuses it.
    marker = new_probe()
    reply = send(
        admin,
        f"GET /admin/login/?probe={marker} HTTP/1.1\r\nHost: localhost\r\n"
        f'X-Forwarded-For: 1.2.3.4\n203.0.113.66 "GET /admin/ HTTP/1.1" 200\r\n'
        "Connection: close\r\n\r\n".encode(),
    )
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:200]
    time.sleep(0.5)
    assert not [line for line in admin.output().splitlines() if line.startswith("203.0.113.66")]


def test_behind_a_trusted_proxy_the_log_names_the_forwarded_client(
    django_env: dict[str, str], launcher: Launcher
) -> None:
    admin = start_admin({**django_env, "TRUSTED_PROXIES": "127.0.0.1"}, launcher, "admin-proxied")
    marker = new_probe()
    send(
        admin,
        f"GET /admin/login/?probe={marker} HTTP/1.1\r\nHost: localhost\r\n"
        "X-Forwarded-Proto: https\r\nX-Forwarded-For: forged, 192.0.2.7\r\n"
        "Connection: close\r\n\r\n".encode(),
    )
    line = logged_line(admin, marker)
    assert re.search(r' client=192\.0\.2\.7 forwarded_for="forged, 192\.0\.2\.7" ', line), line


def test_a_body_sent_slowly_is_answered_408_at_the_deadline_and_frees_the_thread(
    django_env: dict[str, str], launcher: Launcher
) -> None:
    # One worker with one thread: a held thread would hold the whole server.
    settings = {"GUNICORN_ADMIN_WORKERS": "1", "GUNICORN_ADMIN_THREADS": "1"}
    admin = start_admin(
        {**django_env, **settings, "REQUEST_BODY_TIMEOUT_SECONDS": "2"}, launcher, "admin-slow"
    )
    slow = socket.create_connection(("127.0.0.1", admin.port), timeout=20)
    slow.sendall(
        b"POST /admin/login/ HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Proto: https\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
    )
    started = time.monotonic()
    reply = b""
    slow.settimeout(0.2)
    # A byte every 0.2 s: the body would take 200 s; it is cut off at 2.
    while time.monotonic() - started < 10:
        try:
            slow.sendall(b"a")
        except OSError:
            break  # the server closed the connection
        try:
            chunk = slow.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        reply += chunk
    answered = time.monotonic() - started
    slow.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), reply[:300]
    assert b"Content-Type: application/problem+json" in head
    assert body == (
        b'{"type":"about:blank","title":"Request Timeout","status":408,'
        b'"detail":"The request body did not arrive within 2 seconds."}'
    )
    assert 2 <= answered < 4, answered
    # The one thread serves the next request at once.
    assert send(
        admin,
        b"GET /admin/login/ HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Proto: https\r\n"
        b"Connection: close\r\n\r\n",
    ).startswith(b"HTTP/1.1 200 ")


def test_a_body_sent_in_time_reaches_django(django_env: dict[str, str], launcher: Launcher) -> None:
    admin = start_admin({**django_env, "REQUEST_BODY_TIMEOUT_SECONDS": "2"}, launcher, "admin-body")
    body = b"username=curator&password=wrong"
    slow = socket.create_connection(("127.0.0.1", admin.port), timeout=20)
    slow.sendall(
        b"POST /admin/login/ HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Proto: https\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:5]
    )
    time.sleep(1)
    slow.sendall(body[5:])
    reply = b""
    while chunk := slow.recv(65536):
        reply += chunk
    slow.close()
    # Django read the form: CSRF refuses it, as it refuses any form without a token.
    assert reply.startswith(b"HTTP/1.1 403 "), reply[:200]
