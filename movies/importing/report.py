"""What an import did, for the command's summary and for code that reacts to changes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Rejection:
    """A source record that was skipped; ``index`` is its 0-based array position."""

    index: int
    reason: str

    def __str__(self) -> str:
        return f"record {self.index}: {self.reason}"


@dataclass(slots=True)
class ImportReport:
    """What an import did. ``created_ids``/``updated_ids`` say which films changed."""

    records: int = 0
    unchanged: int = 0
    # Records that share a source key with a later record, which wins.
    duplicates: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    people_created: int = 0
    genres_created: int = 0
    credits_created: int = 0
    credits_updated: int = 0
    credits_deleted: int = 0
    cast_entries_dropped: int = 0
    # Thumbnails not on a public host (movies.posters): those films have no poster.
    posters_refused: int = 0
    created_ids: list[int] = field(default_factory=list)
    updated_ids: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def created(self) -> int:
        return len(self.created_ids)

    @property
    def updated(self) -> int:
        return len(self.updated_ids)

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    @property
    def changed_ids(self) -> list[int]:
        return [*self.created_ids, *self.updated_ids]

    def add(self, part: ImportReport) -> None:
        """Count in what one committed batch did."""
        for name in _BATCH_COUNTS:
            setattr(self, name, getattr(self, name) + getattr(part, name))
        self.created_ids += part.created_ids
        self.updated_ids += part.updated_ids


_BATCH_COUNTS = (
    "unchanged",
    "people_created",
    "genres_created",
    "credits_created",
    "credits_updated",
    "credits_deleted",
)


class ImportAborted(Exception):
    """The database refused a batch. Earlier batches are committed; ``report`` counts them."""

    def __init__(self, message: str, report: ImportReport) -> None:
        super().__init__(message)
        self.report = report
