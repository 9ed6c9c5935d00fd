"""``python -m aioapi --host H --port P [--uvloop]``: serve the API in one process.

SIGTERM and SIGINT stop it gracefully: the listening socket closes, in-flight
requests get up to ``API_SHUTDOWN_TIMEOUT_SECONDS`` to finish, then the ORM
bridge and its connections are closed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

import django
from aiohttp import web

from aioapi.protocol import ApiAppRunner


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, set Django up, then serve until a signal."""
    parser = argparse.ArgumentParser(prog="python -m aioapi", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="TCP port to listen on")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop's event loop")
    args = parser.parse_args(argv)

    from aioapi.db import use_api_connection_policy

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mymoviedb.settings")
    use_api_connection_policy()
    django.setup()  # before anything imports a model
    from aioapi.app import create_app
    from aioapi.settings import ApiSettings
    from mymoviedb.startup import freeze_startup_objects

    settings = ApiSettings.from_env()
    loop = _new_loop(args.uvloop)
    asyncio.set_event_loop(loop)
    app = create_app(settings)
    freeze_startup_objects()
    try:
        loop.run_until_complete(
            _serve(app, args.host, args.port, shutdown_timeout=settings.shutdown_timeout_seconds)
        )
    finally:
        _close(loop)


async def _serve(app: web.Application, host: str, port: int, *, shutdown_timeout: float) -> None:
    """What ``web.run_app`` does, on the API's runner (aioapi.protocol), until a signal."""
    runner = ApiAppRunner(
        app,
        # run_app's default; Gunicorn's is GUNICORN_API_KEEPALIVE_SECONDS (also 75).
        keepalive_timeout=75.0,
        shutdown_timeout=shutdown_timeout,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        print(f"======== Running on {site.name} ========", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        # Stops listening, lets in-flight requests finish, then the app's cleanup.
        await runner.cleanup()


def _close(loop: asyncio.AbstractEventLoop) -> None:
    # As run_app ends: whatever the cleanup left running is cancelled, not abandoned.
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


def _new_loop(use_uvloop: bool) -> asyncio.AbstractEventLoop:
    if not use_uvloop:
        return asyncio.new_event_loop()
    try:
        import uvloop
    except ImportError:
        sys.exit("--uvloop: uvloop is not installed (pip install uvloop).")
    return uvloop.new_event_loop()


if __name__ == "__main__":
    main()
