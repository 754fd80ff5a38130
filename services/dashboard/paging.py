"""Every table in the dashboard is a page of rows: offset and limit from the query string."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import Query

MAX_LIMIT = 200


@dataclass(frozen=True)
class Paging:
    offset: int = 0
    limit: int = 50


def paging(offset: int = Query(0, ge=0, le=10_000_000), limit: int = Query(50, ge=1, le=MAX_LIMIT)) -> Paging:
    return Paging(offset, limit)


@dataclass(frozen=True)
class Page:
    rows: list
    total: int
    offset: int
    limit: int
    query: dict
    path: str = ""  # the page's own path when it may be shown as the answer to a form posted elsewhere

    def _link(self, offset: int) -> str:
        params = {k: v for k, v in self.query.items() if v not in (None, "") and k not in ("offset", "limit")}
        return self.path + "?" + urlencode(params | {"offset": offset, "limit": self.limit})

    @property
    def first(self) -> int:
        return self.offset + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.offset + len(self.rows)

    @property
    def previous_link(self) -> str | None:
        if self.offset <= 0:
            return None
        if self.offset >= self.total:  # past the end (a stale or bookmarked link): to the last page, not one back
            return self._link(max(0, (self.total - 1) // self.limit * self.limit))
        return self._link(max(0, self.offset - self.limit))

    @property
    def next_link(self) -> str | None:
        return self._link(self.offset + self.limit) if self.offset + self.limit < self.total else None


def page_of(rows: list, total: int, paging: Paging, query: dict | None = None, *, path: str = "") -> Page:
    """``path``: the page's own, for a page that also answers a form posted to another address (its links
    would otherwise resolve against that address)."""
    return Page(rows, total, paging.offset, paging.limit, dict(query or {}), path)
