"""Names as the catalogue stores them: people keys, genre names and slugs.

Anything that creates a person or a genre (the importer, the generator, the
admin, the API) should go through these functions, so that "Sci-Fi" and
"Science fiction" are one genre and "Robert  Downey Jr." is one person.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from django.utils.text import slugify

# Variants of the same genre, by slug, seen in Wikipedia film lists and common
# elsewhere. The names on the right are the ones the reference data uses.
GENRE_ALIASES: dict[str, str] = {
    "sci-fi": "Science Fiction",
    "scifi": "Science Fiction",
    "sf": "Science Fiction",
    "science-fiction": "Science Fiction",
    "sport": "Sports",
    "animation": "Animated",
    "film-noir": "Noir",
    "biopic": "Biography",
    "biographical": "Biography",
    "romantic": "Romance",
    "musicals": "Musical",
    "westerns": "Western",
}

# Split-off generational suffixes ("Robert Downey", "Jr.") rejoin the name before them.
_SUFFIXES = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"})
# Cast entries that are not people: punctuation left from splitting "(voices)",
# footnote markers like "[a]", whole parentheticals and stray conjunctions.
_NOT_A_NAME = re.compile(r"[\W_]+|\[[^\]]*\]|\(.*\)|and|with|the|of", re.IGNORECASE)


def collapse(text: str) -> str:
    """Strip ``text`` and collapse inner runs of whitespace to one space (NFC)."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def fold(text: str) -> str:
    """Compare-form of a name: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def person_key(name: str) -> str:
    """The ``Person.key`` of a display name; equal keys are the same person."""
    return fold(name)


def clean_cast(names: list[str]) -> tuple[list[str], int]:
    """Tidy a scraped cast list: rejoin suffixes, drop entries that are not names.

    Returns the display names in billing order and how many entries were dropped.
    De-duplication by key is left to the caller, who also needs the keys.
    """
    cleaned: list[str] = []
    dropped = 0
    for raw in names:
        name = collapse(raw)
        if not name or _NOT_A_NAME.fullmatch(name):
            dropped += 1
        elif name.casefold() in _SUFFIXES and cleaned:
            cleaned[-1] = f"{cleaned[-1]} {name}"
        else:
            cleaned.append(name)
    return cleaned, dropped


@functools.lru_cache(maxsize=4096)  # sources repeat a few dozen genre names
def normalise_genre(name: str) -> tuple[str, str]:
    """Return ``(slug, display name)`` for a genre as written in a source.

    The slug is the genre's identity. Known variants map to one canonical name;
    otherwise lower-case words are capitalised ("film noir" -> "Film Noir") and
    words with their own capitals ("LGBT", "McCarthyism") are left alone.
    """
    display = collapse(name)
    slug = slugify(display)
    canonical = GENRE_ALIASES.get(slug)
    if canonical is not None:
        return slugify(canonical), canonical
    words = [word.capitalize() if word.islower() else word for word in display.split(" ")]
    return slug, " ".join(words)
