"""The store port: units of work and repositories for every aggregate.

Data is split into *domains*, each committed atomically on its own:

- the portal domain (users, instances, plan transactions, withdrawals, the wallet ledger, global
  plugin toggles, the platform audit log);
- one domain per instance (its catalog, stock, carts, orders, deliveries, buyers, coupons, settings,
  plugin toggles, ledger postings waiting to reach the wallet, and its audit log).

A unit of work covers one domain. Why not one transaction over everything: a tenant's bot runs in
a container that sees only its own instance directory, so nothing it commits may depend on the
portal's files. Effects that cross domains (a sale credits the seller's wallet) travel through an
outbox in the source domain and are applied to the target idempotently (ledger entries have
deterministic ids).

Repositories hold JSON documents (`dict` with a string `"id"`); the domain maps them to entities.
Documents returned are copies: mutating one changes nothing until it is `put` back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

Doc = dict[str, Any]

PORTAL = "portal"

# Instance ids name folders: nothing else may ever reach the filesystem through them.
INSTANCE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{2,39}$")

PORTAL_COLLECTIONS = (
    "users",
    "instances",
    "plan_transactions",
    "withdrawals",
    "ledger",
    "plugin_toggles",
    "audit",
    "meta",
    "sandbox_charges",
    "api_tokens",
    "sandbox_preferences",
)

INSTANCE_COLLECTIONS = (
    "products",
    "stock",
    "carts",
    "orders",
    "deliveries",
    "buyers",
    "coupons",
    "settings",
    "plugin_toggles",
    "postings",
    "audit",
    # subscriptions (issue 18): timed roles, one document per buyer and product
    "subscriptions",
    "webhook_endpoints",
    "webhook_events",
    "staff_notices",
    # big stock imports run as jobs, one chunk per unit of work (services/stock_imports.py):
    # the job's state and progress, and its keys (sealed) waiting to be added, part by part
    "stock_jobs",
    "stock_job_parts",
)


class StoreError(Exception):
    """Base class of every store failure."""


class StoreBusy(StoreError):
    """A domain's lock was not free within the deadline: that domain is unavailable for now
    (503), the others are not affected."""

    def __init__(self, domain: str, seconds: float) -> None:
        super().__init__(f"{domain}: lock not free within {seconds:.0f} s")
        self.domain = domain


class StoreUnavailable(StoreError):
    """The database does not answer now (stopped, restarting, unreachable): nothing was done,
    the same call may succeed in a few seconds (503 with Retry-After)."""

    retry_after = 2


class StoreCorrupt(StoreError):
    """A data file cannot be read as it is. Start-up stops; the file is left untouched."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


class StoreSchemaTooNew(StoreCorrupt):
    """A file was written by a newer Astra; this version will not guess what it means."""


class LockOrderError(StoreError):
    """A unit of work asked for locks in an order that could deadlock (a bug in the caller)."""


class ReadOnlyUnitOfWork(StoreError):
    """`commit()` or a write on a unit of work opened for reading."""


class DuplicateId(StoreError):
    """`add()` of a document whose id already exists."""


class NotFound(StoreError):
    """`require()` of a document that does not exist."""


class InvalidDomain(StoreError):
    """An instance id that is not `^[a-z0-9][a-z0-9-]{2,39}$` (never used as a raw path)."""


class Repository(Protocol):
    """One collection of documents inside a unit of work."""

    name: str

    def get(self, doc_id: str) -> Doc | None:
        """The document, or None."""
        ...

    def require(self, doc_id: str) -> Doc:
        """The document, or NotFound."""
        ...

    def put(self, doc: Doc) -> None:
        """Insert or replace `doc` (keyed by `doc["id"]`)."""
        ...

    def add(self, doc: Doc) -> None:
        """Insert; DuplicateId if the id exists. The idempotency primitive for ledgers and logs."""
        ...

    def delete(self, doc_id: str) -> None:
        """Remove the document if present."""
        ...

    def find(self, **equals: Any) -> list[Doc]:
        """Documents whose top-level fields equal the given values, in insertion order.

        Served from an index when one is declared for exactly these fields."""
        ...

    def first(self, **equals: Any) -> Doc | None:
        """The first match of `find`, or None."""
        ...

    def find_any(self, field: str, values: Iterable[Any]) -> list[Doc]:
        """Documents whose `field` equals any of `values`, in no particular order: one lookup
        for many values (a stock import checks thousands of fingerprints at once), served from
        the index on exactly `(field,)` when one is declared."""
        ...

    def count(self, **equals: Any) -> int:
        """How many documents `find` would return."""
        ...

    def all(self) -> list[Doc]:
        """Every document, in insertion order."""
        ...

    def ids(self) -> list[str]:
        """Every id, in insertion order."""
        ...


class UnitOfWork(Protocol):
    """A transaction over one domain. Leaving the `with` block without `commit()` discards its
    changes."""

    domain: str
    writable: bool

    def repo(self, name: str) -> Repository:
        """The repository of one collection of this domain."""
        ...

    def commit(self) -> None:
        """Make every change durable (fsync) and visible to other processes; returns only after."""
        ...

    def rollback(self) -> None:
        """Forget uncommitted changes."""
        ...


class PortalUnitOfWork(UnitOfWork, Protocol):
    users: Repository
    instances: Repository
    plan_transactions: Repository
    withdrawals: Repository
    ledger: Repository
    plugin_toggles: Repository
    audit: Repository
    meta: Repository
    sandbox_charges: Repository
    sandbox_preferences: Repository  # the sandbox gateway's hosted checkouts
    api_tokens: Repository  # sellers' personal API tokens (hashed), see services/api_tokens.py


class InstanceUnitOfWork(UnitOfWork, Protocol):
    instance_id: str
    products: Repository
    stock: Repository
    carts: Repository
    orders: Repository
    deliveries: Repository
    buyers: Repository
    coupons: Repository
    settings: Repository
    plugin_toggles: Repository
    postings: Repository
    audit: Repository
    subscriptions: Repository
    # The seller's outgoing webhook (URL, sealed secret) and its outbox of events and attempts
    # (services/outgoing_webhooks.py). Never served to the instance's runtime.
    webhook_endpoints: Repository
    webhook_events: Repository
    # Notices for the shop's staff (and a buyer's cart warning) waiting to be sent, then kept a
    # while as sent: written by the process that committed their event, sent by the notifier.
    staff_notices: Repository
    stock_jobs: Repository
    stock_job_parts: Repository


@dataclass(frozen=True)
class Problem:
    """One finding of `Store.check()` / `astra doctor`."""

    severity: Literal["error", "warning", "info"]
    path: str
    message: str
    hint: str = ""


class Store(Protocol):
    def portal(self, *, write: bool = True) -> AbstractContextManager[PortalUnitOfWork]:
        """A unit of work on the portal domain. With `write=False` it shares the lock with other
        readers and refuses writes."""
        ...

    def instance(
        self, instance_id: str, *, write: bool = True
    ) -> AbstractContextManager[InstanceUnitOfWork]:
        """A unit of work on one instance's domain (created on first commit)."""
        ...

    def instance_ids(self) -> list[str]:
        """Instances that have data in this store."""
        ...

    def instances_with(self, collection: str, **equals: Any) -> list[str]:
        """Instances with at least one document of `collection` matching `equals` (as `find`
        matches), sorted: what a background loop has work in, without opening every instance
        on every pass. An instance that cannot be read is listed (its reader reports it)."""
        ...

    def open(self, *, quarantine: bool = False) -> dict[str, StoreCorrupt]:
        """Load and verify every domain; raises StoreCorrupt naming the first bad file, or with
        `quarantine` returns the damaged instance domains (the portal must always load)."""
        ...

    def check(self) -> list[Problem]:
        """Read every file and report what is wrong, without changing anything."""
        ...

    def backup(self, dest: Path) -> dict[str, Any]:
        """Write a consistent copy of every domain to `dest` while others keep working; returns the
        manifest written beside it."""
        ...

    def health(self) -> dict[str, Any]:
        """Cheap liveness of the store for `/health`: {"ok": bool, ...}."""
        ...


def iter_domains(store: Store) -> Iterator[str]:
    """The portal first, then every instance: the order backups and checks walk the data in."""
    yield PORTAL
    yield from store.instance_ids()
