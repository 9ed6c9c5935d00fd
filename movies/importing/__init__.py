"""Bringing films into the catalogue from the reference JSON format.

``read_source`` loads a JSON array from a path or URL, ``import_movies`` writes
it. Both are used by ``manage.py import_movies`` and can be called from code.
"""

from movies.importing.normalise import normalise_genre, person_key
from movies.importing.records import FilmRecord, RecordError, parse_record, source_key
from movies.importing.report import ImportAborted, ImportReport, Rejection
from movies.importing.sources import SourceError, read_source
from movies.importing.writer import import_movies

__all__ = [
    "FilmRecord",
    "ImportAborted",
    "ImportReport",
    "RecordError",
    "Rejection",
    "SourceError",
    "import_movies",
    "normalise_genre",
    "parse_record",
    "person_key",
    "read_source",
    "source_key",
]
