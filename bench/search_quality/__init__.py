"""Search quality: a judged query set over the real catalogue, and its measurement.

``python -m bench.search_quality`` runs every query of ``queries.json`` through
the API's own list selector (``movies.selectors.list_movies``, the code
both servers call) and prints hit@1, hit@3 and MRR@10 per query class, with the
latency of each search. ``python -m bench.search_quality.build`` rebuilds the
judged set from the Wikipedia file (see that module for the rule).
"""
