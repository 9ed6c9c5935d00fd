"""Read-your-writes across requests: the ``X-Consistency-Token`` header.

With read replicas configured, a successful write answers with the primary's
WAL position after its commit (``X-Consistency-Token: 0/3000148``). A later
request that sends the token back reads nothing older: the router
(mymoviedb/routers.py) sends its reads to a replica that has replayed that far,
or to the primary. The token costs one ``SELECT pg_current_wal_lsn()`` per
write, and nothing when no replica is configured (then every read is the
primary's and no token is sent). A token that is not a WAL position (damaged
on its way, say) asks for the newest data there is: the primary answers. It is
never an error, so a client can always send back what it got.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from aioapi.keys import BRIDGE
from mymoviedb import routers
from mymoviedb.replication import format_lsn, parse_lsn, primary_lsn

TOKEN_HEADER = "X-Consistency-Token"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Past any position a replica can reach: only the primary serves it.
NEWEST = 1 << 64


@web.middleware
async def consistency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run each request in a routing scope of its own, bounded below by its token;
    give a successful write the token of its commit."""
    min_lsn = None
    text = request.headers.get(TOKEN_HEADER)
    if text is not None:
        min_lsn = parse_lsn(text)
        if min_lsn is None:
            min_lsn = NEWEST
    with routers.request_scope(min_lsn=min_lsn):
        response = await handler(request)
        wrote = request.method not in READ_METHODS and routers.is_pinned()
        if wrote and response.status < 400 and routers.replica_aliases():
            lsn = await request.app[BRIDGE].run(primary_lsn)
            response.headers[TOKEN_HEADER] = format_lsn(lsn)
    return response
