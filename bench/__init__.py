"""The wrk comparison of Django under Gunicorn and aioapi; run ``python -m bench``."""
