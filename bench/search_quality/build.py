"""Build ``queries.json``, the judged query set, from the Wikipedia catalogue file.

The rule (deterministic, no hand-picking): the films of each decade from the
1920s to the 2010s with the most cast entries (the file's only measure of how
well known a film is), 18 per decade, keeping only films that have a synopsis,
a cast, and a title no other film of the file shares once case, accents and
punctuation are folded (so a title alone names one film). Per film, queries
of these classes (a class is skipped where it does not apply):

* ``exact``: the title as typed (lower case);
* ``no_article``: a title starting with The/A/An, without it;
* ``typo``: one edit (swap, drop, double or replace a letter, chosen by a hash
  of the title) in the title's longest word of five letters or more;
* ``prefix``: the first 60 % of the title's characters;
* ``title_year``: the title and its year;
* ``person_title``: the first-billed actor's surname and the title's longest word.

Run: ``python -m bench.search_quality.build [--source FILE] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import unicodedata
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[1].parent / "shared" / "data" / "wikipedia-movies.json.gz"
DEFAULT_OUT = HERE / "queries.json"
PER_DECADE = 18
DECADES = range(1920, 2020, 10)
ARTICLES = ("the ", "a ", "an ")
STOPWORDS = frozenset(
    ["the", "a", "an", "of", "and", "in", "on", "for", "to", "with", "from", "at", "by", "is", "it"]
)


def fold(text: str) -> str:
    """Case, accents and punctuation folded away: how two titles are compared."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def _hash(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def typo(title: str) -> str | None:
    """``title`` with one edit in its longest word of 5+ letters; None without one."""
    words = title.split()
    candidates = [w for w in words if len(w) >= 5 and w.isalpha()]
    if not candidates:
        return None
    word = max(candidates, key=len)
    h = _hash(title)
    i = 1 + h % (len(word) - 2)  # never the first letter: people rarely get it wrong
    kind = (h // 7) % 4
    if kind == 0:  # two neighbours swapped
        new = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    elif kind == 1:  # a letter dropped
        new = word[:i] + word[i + 1 :]
    elif kind == 2:  # a letter doubled
        new = word[:i] + word[i] + word[i:]
    else:  # a letter replaced by its neighbour in the alphabet
        new = word[:i] + ("b" if word[i] == "a" else chr(ord(word[i]) - 1)) + word[i + 1 :]
    if new == word:
        return None
    return " ".join(new if w is word else w for w in words)


def queries_for(film: dict[str, Any]) -> list[dict[str, str]]:
    title = film["title"].lower()
    out = [{"class": "exact", "q": title}]
    for article in ARTICLES:
        if title.startswith(article):
            out.append({"class": "no_article", "q": title[len(article) :]})
    typed = typo(title)
    if typed:
        out.append({"class": "typo", "q": typed})
    out.append({"class": "prefix", "q": title[: max(3, round(len(title) * 0.6))].rstrip()})
    out.append({"class": "title_year", "q": f"{title} {film['year']}"})
    words = [w for w in fold(title).split() if w not in STOPWORDS and len(w) >= 3]
    surname = fold(film["cast"][0]).split()[-1] if film["cast"] else ""
    if words and surname:
        out.append({"class": "person_title", "q": f"{surname} {max(words, key=len)}"})
    return out


def choose(films: list[dict[str, Any]]) -> list[dict[str, Any]]:
    titles: dict[str, int] = defaultdict(int)
    for film in films:
        titles[fold(film["title"])] += 1
    chosen = []
    for decade in DECADES:
        eligible = [
            f
            for f in films
            if decade <= f["year"] < decade + 10
            and f.get("extract")
            and f["cast"]
            and f.get("href")
            and titles[fold(f["title"])] == 1
        ]
        eligible.sort(key=lambda f: (-len(f["cast"]), f["title"]))
        chosen.extend(eligible[:PER_DECADE])
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    with gzip.open(args.source) as source:
        films = json.load(source)
    judged = [
        {
            # The importer's identity of the film (movies.importing.records.source_key).
            "source_key": f"wiki:{film['year']}:{film['href']}",
            "title": film["title"],
            "year": film["year"],
            "queries": queries_for(film),
        }
        for film in choose(films)
    ]
    args.out.write_text(json.dumps(judged, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(judged)} films, {sum(len(f['queries']) for f in judged)} queries -> {args.out}")


if __name__ == "__main__":
    main()
