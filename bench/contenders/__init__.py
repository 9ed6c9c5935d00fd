"""The benchmark's other contenders, a Django app of their own (bench/settings.py
installs it): the comparison views async (``/async/movies/``), a typical Django REST
framework API of the same films (``/drf/movies/``), and the simulated database
latency every bench server runs with. The product names none of it."""
