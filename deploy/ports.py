"""A free TCP port on loopback for the servers the local cluster and the tests start."""

from __future__ import annotations

import random
import socket

# Below the kernel's ephemeral range (32768-60999 by default), so no outgoing
# connection of a busy test run is handed the port between this probe and the
# server's bind.
PORTS = range(18000, 30000)


def free_port() -> int:
    """A port in :data:`PORTS` that nothing listens on right now."""
    for port in random.sample(PORTS, 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")
