"""``python -m aioapi --host H --port P [--uvloop]``: serve the API in one process.

SIGTERM and SIGINT stop it gracefully: the listening socket closes, in-flight
requests get up to ``API_SHUTDOWN_TIMEOUT_SECONDS`` to finish, then the ORM
bridge and its connections are closed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import django


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
    from aiohttp import web

    from aioapi.app import create_app
    from aioapi.settings import ApiSettings
    from mymoviedb.startup import freeze_startup_objects

    settings = ApiSettings.from_env()
    loop = _new_loop(args.uvloop)
    app = create_app(settings)
    freeze_startup_objects()
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        shutdown_timeout=settings.shutdown_timeout_seconds,
        loop=loop,
        print=lambda message: print(message, file=sys.stderr, flush=True),
    )


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
