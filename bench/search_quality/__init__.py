"""Search quality: a judged query set over the real catalogue (``queries.json``, rebuilt
by ``python -m bench.search_quality.build``), measured by ``python -m bench.search_quality``."""
