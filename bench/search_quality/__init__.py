"""Search quality: ``python -m bench.search_quality`` measures the judged query set
``queries.json``, committed data: per decade from the 1920s to the 2010s, the 18 films of
the Wikipedia file with the most cast entries among those with a synopsis, a cast and a
title no other film shares once folded; per film, queries of six classes (exact, no
article, one typo, 60 % prefix, title and year, lead actor's surname and a title word).
Its generator, run once: ``git show 7ebdbcc:bench/search_quality/build.py``."""
