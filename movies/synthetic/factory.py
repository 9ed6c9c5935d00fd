"""A deterministic synthetic catalogue: the same count, seed and pool size give the same rows.

Everything random comes from one ``random.Random(seed)`` drawn in a fixed order,
and person names are a pure function of their index, so two runs into empty
databases store identical films, people, genres and credits. Films are keyed
``synthetic:<seed>:<n>``; a second run with a seed that is already loaded does
nothing (see :func:`movies.synthetic.loading.generate_catalogue`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date


def _words(text: str, separator: str | None = None) -> tuple[str, ...]:
    # Vocabulary reads better as running text than as one quoted word per line.
    return tuple(text.split(separator))


# The reference data's names for these genres, so both catalogues share them.
GENRES = _words(
    "Drama Comedy Thriller Romance Action Crime Horror Adventure Mystery Fantasy Western War "
    "Family Musical Animated Documentary Biography Noir Sports Superhero"
) + ("Science Fiction", "Martial Arts")

_FIRST = _words(
    "Ada Alan Alice Amos Ana Ari Bea Ben Cal Cara Cleo Dara Dev Dina Eli Elsa Emil Eva Finn "
    "Flora Gil Greta Hal Hana Ida Igor Ines Ira Jan Jade Joel June Kai Kira Lars Lena Leo Lia "
    "Mae Max Mia Milo Nell Nico Nora Omar Opal Otto Pia Quin Rae Rex Rosa Sam Sara Theo Tess "
    "Uma Vera Wes Yara Zane Zoe"
)
_LAST = _words(
    "Abbott Acre Bell Birch Cole Crane Dale Dunn Ellis Ewing Frost Fry Gale Grey Hale Hart Ives "
    "Jett Kane Keel Lamb Lark Marsh Moss Nash Noel Oakes Orr Pike Platt Quill Reed Rowe Sage "
    "Shaw Stone Tate Thorn Vale Voss Wade Webb Wren Yates Yoon Zell Ashby Brandt Castro Delgado "
    "Engel Foley Garza Hayes Ibarra Jensen Kowal Lund Mercer Novak Ortiz Pruitt Quint Ruiz"
)
_ADJECTIVES = _words(
    "Silent Broken Golden Hidden Last Lonely Crimson Distant Frozen Burning Secret Endless "
    "Wild Quiet Shattered Velvet Iron Paper Midnight Electric Hollow Restless Bitter Gentle "
    "Savage Silver Forgotten Northern Painted Falling Dark Bright Lost Final Strange Sweet "
    "Empty Wicked Honest Little"
)
_NOUNS = _words(
    "Harbor River Garden Mirror Promise Signal Kingdom Horizon Witness Letter Station Island "
    "Season Shadow Crown Bridge Storm Orchard Circus Engine Voyage Border Verdict Lantern "
    "Frontier Ballad Compass Fortune Canyon Summer Winter Highway Empire Harvest Machine "
    "Daughter Stranger Mountain Ocean Heart"
)
_PLACES = _words(
    "Brighton Avalon Cairo Dover Eldridge Fairmont Galveston Havana Ithaca Juneau Kingston "
    "Lisbon Marrakesh Nairobi Oslo Paris Quebec Reno Savannah Tangier Utica Venice Warsaw "
    "Yukon Zanzibar Memphis Tulsa Boston Seattle Denver"
)
_TRAITS = _words(
    "young retired ambitious weary reckless idealistic stubborn disgraced shy brilliant "
    "penniless widowed restless gifted ageing honest cunning lonely newly-married forgetful"
)
_OCCUPATIONS = _words(
    "detective;nurse;pilot;schoolteacher;boxer;widow;con artist;journalist;farmer;singer;"
    "lawyer;soldier;chef;astronaut;thief;priest;mechanic;architect;runaway;diplomat;sheriff;"
    "photographer;surgeon;fisherman;dancer;professor;smuggler;heiress;clerk;inventor",
    ";",
)
_GOALS = _words(
    "sets out to clear a brother's name;inherits a failing hotel;"
    "is hired to find a missing painting;tries to win back an old love;"
    "takes one last job before retiring;returns home after twenty years;"
    "agrees to cross the country with a stranger;discovers a letter that changes everything;"
    "joins a travelling circus;must keep a promise made in wartime;"
    "witnesses a crime nobody else believes in;starts a newspaper in a dying town;"
    "trains for a championship fight;hides a fugitive in the attic;"
    "searches for a long-lost sister;runs for mayor against a powerful rancher",
    ";",
)
_TWISTS = _words(
    "Nothing is what it seems.;A storm traps everyone together for one long night.;"
    "An old rival arrives with a secret.;The past refuses to stay buried.;"
    "Time is running out.;The truth comes at a price.;"
    "A child's question starts to unravel the lie.;Friendship is tested to the breaking point.;"
    "The whole town is watching.;Help comes from the least likely place.",
    ";",
)


def person_name(index: int) -> str:
    """The name of synthetic person ``index``: distinct for every index, no randomness.

    First and last names cycle; each further cycle adds middle initials, so the
    pool can be as large as asked for without two people sharing a name.
    """
    first = _FIRST[index % len(_FIRST)]
    rest, last_index = divmod(index // len(_FIRST), len(_LAST))
    initials: list[str] = []
    while rest:  # bijective base 26: 1 -> A, 26 -> Z, 27 -> AA
        rest, letter = divmod(rest - 1, 26)
        initials.insert(0, f"{chr(ord('A') + letter)}.")
    return " ".join([first, *initials, _LAST[last_index]])


@dataclass(frozen=True, slots=True)
class SyntheticFilm:
    """One generated film; people are indexes into the pool, genres into ``GENRES``."""

    n: int
    title: str
    year: int
    release_date: date | None
    runtime_minutes: int | None
    rating: float | None
    synopsis: str
    genres: tuple[int, ...]
    cast: tuple[int, ...]  # in billing order
    directors: tuple[int, ...]


def key_prefix(seed: int) -> str:
    """What the source keys of all films of ``seed`` start with."""
    return f"synthetic:{seed}:"


def source_key(seed: int, n: int) -> str:
    return f"{key_prefix(seed)}{n}"


class FilmFactory:
    """Draws films in order from one ``random.Random(seed)``."""

    def __init__(self, seed: int, people: int) -> None:
        if people < 10:
            raise ValueError("the people pool needs at least 10 people")
        self.rng = random.Random(seed)
        self.people = people

    def films(self, count: int) -> Iterator[SyntheticFilm]:
        for n in range(count):
            yield self.film(n)

    def _title(self) -> str:
        rng = self.rng
        pattern = rng.randrange(6)
        if pattern == 0:
            title = f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        elif pattern == 1:
            title = f"{rng.choice(_NOUNS)} of {rng.choice(_PLACES)}"
        elif pattern == 2:
            title = f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} of {rng.choice(_PLACES)}"
        elif pattern == 3:
            title = f"{rng.choice(_FIRST)}'s {rng.choice(_NOUNS)}"
        elif pattern == 4:
            title = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} in {rng.choice(_PLACES)}"
        else:
            title = f"A {rng.choice(_NOUNS)} for {rng.choice(_FIRST)} {rng.choice(_LAST)}"
        if rng.random() < 0.04:
            title += f" {rng.choice(('II', 'III', 'IV'))}"
        return title

    def _synopsis(self) -> str:
        rng = self.rng
        trait = rng.choice(_TRAITS)
        article = "An" if trait[0] in "aeiou" else "A"
        text = (
            f"{article} {trait} {rng.choice(_OCCUPATIONS)} from {rng.choice(_PLACES)} "
            f"{rng.choice(_GOALS)}."
        )
        if rng.random() < 0.7:
            text += f" {rng.choice(_TWISTS)}"
        return text

    def _people(self, count: int) -> tuple[int, ...]:
        # Squaring skews choices to low indexes: a few people appear in many films.
        chosen: dict[int, None] = {}
        while len(chosen) < count:
            chosen[int(self.people * self.rng.random() ** 2)] = None
        return tuple(chosen)

    def film(self, n: int) -> SyntheticFilm:
        """The next film; call in order ``n = 0, 1, ...`` for reproducible output."""
        rng = self.rng
        title = self._title()
        year = 1920 + int(105 * rng.random() ** 0.6)
        release_date = (
            date(year, rng.randint(1, 12), rng.randint(1, 28)) if rng.random() < 0.8 else None
        )
        runtime = max(60, min(240, int(rng.gauss(104, 18)))) if rng.random() < 0.95 else None
        rating = round(max(0.0, min(10.0, rng.gauss(6.3, 1.3))), 1) if rng.random() < 0.9 else None
        synopsis = self._synopsis()
        genres = tuple(sorted(rng.sample(range(len(GENRES)), rng.choice((1, 1, 2, 2, 2, 3)))))
        cast = self._people(2 + int(7 * rng.random() ** 2))
        directors = self._people(2 if rng.random() < 0.15 else 1)
        return SyntheticFilm(
            n, title, year, release_date, runtime, rating, synopsis, genres, cast, directors
        )
