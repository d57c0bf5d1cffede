"""What the JSON and the PostgreSQL units of work share: a repository per collection, made on
first use (most units touch two or three of the domain's collections), only for the domain's
own collections, and the refusal to write through a read-only or closed unit."""

from __future__ import annotations

from typing import Any

from astra.ports.store import ReadOnlyUnitOfWork, StoreError


class UnitOfWorkBase:
    """Subclasses set `domain`, `writable`, `closed` and `_names` (the domain's collections),
    and name their repository class in `_repository`."""

    domain: str
    writable: bool
    closed: bool
    _names: tuple[str, ...]
    _repository: Any

    def __getattr__(self, name: str) -> Any:
        if name in self.__dict__.get("_names", ()):
            repo = type(self)._repository(self, name)
            setattr(self, name, repo)
            return repo
        raise AttributeError(name)

    def repo(self, name: str) -> Any:
        if name not in self._names:
            raise StoreError(f"no collection {name!r} in domain {self.domain!r}")
        return getattr(self, name)

    def _check_writable(self) -> None:
        if self.closed:
            raise StoreError("unit of work already closed")
        if not self.writable:
            raise ReadOnlyUnitOfWork(f"unit of work on {self.domain!r} is read-only")
