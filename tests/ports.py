"""A free TCP port on loopback for the servers the tests start (deploy/ports.py)."""

from deploy.ports import PORTS, free_port

__all__ = ["PORTS", "free_port"]
