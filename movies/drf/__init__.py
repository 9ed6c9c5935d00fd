"""A typical Django REST framework API of the same films (bench/: the ``drf`` contender)."""
