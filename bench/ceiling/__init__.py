"""Reference ceilings measured beside the servers (see raw_pool.py)."""
