"""Units of work and repositories over one domain's state.

Changes are buffered in the unit of work and reach the journal as one record at `commit()`; reads
see the unit's own changes first. Every document crossing the boundary is copied (through orjson,
which also proves it is JSON), so callers can never alter the shared cache by accident.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from astra.adapters.store.units import UnitOfWorkBase
from astra.ports.store import (
    INSTANCE_COLLECTIONS,
    PORTAL_COLLECTIONS,
    Doc,
    DuplicateId,
    NotFound,
    StoreError,
)

from .state import DomainState


def _clone(doc: Doc) -> Doc:
    return orjson.loads(orjson.dumps(doc))


def _hashable_in(value: Any, keys: set[Any] | list[Any]) -> bool:
    try:
        return value in keys
    except TypeError:  # an unhashable value is never equal to a hashable one
        return False


def _matches(doc: Doc, equals: dict[str, Any]) -> bool:
    return all(doc.get(k) == v for k, v in equals.items())


class JsonRepository:
    __slots__ = ("_uow", "name")

    def __init__(self, uow: JsonUnitOfWork, name: str) -> None:
        self._uow = uow
        self.name = name

    @property
    def _base(self) -> dict[str, Doc]:
        return self._uow._state.collections[self.name].docs

    @property
    def _pending(self) -> dict[str, Doc | None]:
        return self._uow._pending.setdefault(self.name, {})

    def get(self, doc_id: str) -> Doc | None:
        pending = self._uow._pending.get(self.name)
        if pending is not None and doc_id in pending:
            doc = pending[doc_id]
        else:
            doc = self._base.get(doc_id)
        return None if doc is None else _clone(doc)

    def require(self, doc_id: str) -> Doc:
        doc = self.get(doc_id)
        if doc is None:
            raise NotFound(f"{self.name}/{doc_id} not found")
        return doc

    def put(self, doc: Doc) -> None:
        self._uow._check_writable()
        doc_id = doc.get("id") if isinstance(doc, dict) else None
        if not isinstance(doc_id, str) or not doc_id:
            raise StoreError(f"{self.name}: a document needs a non-empty string 'id'")
        try:
            raw = orjson.dumps(doc)
        except TypeError as exc:
            raise StoreError(f"{self.name}/{doc_id} is not JSON-serialisable: {exc}") from None
        # Keep the private copy and its JSON: the commit embeds the bytes instead of encoding again.
        self._pending[doc_id] = orjson.loads(raw)
        self._uow._raw[(self.name, doc_id)] = raw

    def add(self, doc: Doc) -> None:
        if self.get(doc.get("id", "")) is not None:
            raise DuplicateId(f"{self.name}/{doc.get('id')} already exists")
        self.put(doc)

    def delete(self, doc_id: str) -> None:
        self._uow._check_writable()
        self._pending[doc_id] = None

    def _candidate_ids(self, equals: dict[str, Any]) -> list[str]:
        coll = self._uow._state.collections[self.name]
        if equals:
            ids = coll.lookup(equals)
            if ids is not None:
                return ids
            return [i for i, d in coll.docs.items() if _matches(d, equals)]
        return list(coll.docs)

    def find(self, **equals: Any) -> list[Doc]:
        pending = self._uow._pending.get(self.name) or {}
        base = self._base
        out = [_clone(base[i]) for i in self._candidate_ids(equals) if i not in pending]
        out.extend(_clone(d) for d in pending.values() if d is not None and _matches(d, equals))
        return out

    def first(self, **equals: Any) -> Doc | None:
        pending = self._uow._pending.get(self.name) or {}
        for i in self._candidate_ids(equals):
            if i not in pending:
                return _clone(self._base[i])
        for d in pending.values():
            if d is not None and _matches(d, equals):
                return _clone(d)
        return None

    def find_any(self, field: str, values: Iterable[Any]) -> list[Doc]:
        wanted = list(dict.fromkeys(values))
        if not wanted:
            return []
        try:
            keys: set[Any] | list[Any] = set(wanted)
        except TypeError:  # unhashable values (lists, objects): compared one by one
            keys = wanted
        coll = self._uow._state.collections[self.name]
        ids: dict[str, None] = {}
        if coll.lookup({field: wanted[0]}) is not None:
            for v in wanted:
                ids.update(dict.fromkeys(coll.lookup({field: v}) or ()))
        else:
            ids.update((i, None) for i, d in coll.docs.items() if d.get(field) in keys)
        pending = self._uow._pending.get(self.name) or {}
        base = self._base
        # One pass over this unit's own writes whatever the number of values (checking each
        # value against them in turn is what made a big import quadratic).
        out = [_clone(base[i]) for i in ids if i not in pending]
        out.extend(_clone(d) for d in pending.values()
                   if d is not None and _hashable_in(d.get(field), keys))
        return out

    def count(self, **equals: Any) -> int:
        pending = self._uow._pending.get(self.name)
        if not pending:
            return len(self._candidate_ids(equals))
        return len(self.find(**equals))

    def all(self) -> list[Doc]:
        return self.find()

    def ids(self) -> list[str]:
        pending = self._uow._pending.get(self.name) or {}
        out = [i for i in self._base if i not in pending]
        out.extend(i for i, d in pending.items() if d is not None)
        return out


class JsonUnitOfWork(UnitOfWorkBase):
    _repository = JsonRepository

    def __init__(self, domain: str, state: DomainState, writable: bool, names: tuple[str, ...]):
        self.domain = domain
        self.writable = writable
        self._state = state
        self._pending: dict[str, dict[str, Doc | None]] = {}
        self._raw: dict[tuple[str, str], bytes] = {}
        self._names = names
        self.closed = False

    def commit(self) -> None:
        self._check_writable()
        raw = self._raw
        ops = [
            [coll, doc_id, doc]
            for coll, changes in self._pending.items()
            for doc_id, doc in changes.items()
        ]
        encoded = [
            [coll, doc_id, None if doc is None else orjson.Fragment(raw[(coll, doc_id)])]
            for coll, doc_id, doc in ops
        ]
        self.rollback()
        if ops:
            self._state.append(ops, encoded)

    def rollback(self) -> None:
        self._pending = {}
        self._raw = {}


class PortalUnitOfWork(JsonUnitOfWork):
    def __init__(self, state: DomainState, writable: bool) -> None:
        super().__init__("portal", state, writable, PORTAL_COLLECTIONS)


class InstanceUnitOfWork(JsonUnitOfWork):
    def __init__(self, instance_id: str, state: DomainState, writable: bool) -> None:
        super().__init__(instance_id, state, writable, INSTANCE_COLLECTIONS)
        self.instance_id = instance_id
