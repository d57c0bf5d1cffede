"""Where each collection lives on disk, and which fields are indexed.

The file names follow the original system (`portal.json`, `instances/<id>/products.json`,
`stock.json`, ...) so an operator who knew it finds the same files. Each domain also has one
append-only journal; snapshots are rewritten only when the journal is compacted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from astra.ports.store import (
    INSTANCE_COLLECTIONS,
    INSTANCE_ID_PATTERN,
    PORTAL,
    PORTAL_COLLECTIONS,
    InvalidDomain,
)

FORMAT = "astra-json-store"
INSTANCE_ID_RE = INSTANCE_ID_PATTERN

PORTAL_FILES: dict[str, tuple[str, ...]] = {"portal.json": PORTAL_COLLECTIONS}

INSTANCE_FILES: dict[str, tuple[str, ...]] = {
    "products.json": ("products",),
    # An import job's parts live beside the stock they become: no new file, so a domain written
    # before jobs existed loads as it is (its stock.json simply has no jobs yet).
    "stock.json": ("stock", "stock_jobs", "stock_job_parts"),
    "carts.json": ("carts",),
    "orders.json": ("orders",),
    "deliveries.json": ("deliveries",),
    "buyers.json": ("buyers",),
    "coupons.json": ("coupons",),
    "instance.json": ("settings", "plugin_toggles", "postings"),
    "audit.json": ("audit",),
    "subscriptions.json": ("subscriptions",),
    "webhooks.json": ("webhook_endpoints", "webhook_events"),
    "notices.json": ("staff_notices",),
}
assert {c for cs in INSTANCE_FILES.values() for c in cs} == set(INSTANCE_COLLECTIONS)

# Indexes answer `find(**equals)` for exactly these field sets without a scan; the hot paths are
# "available keys of a variant", "the buyer's open cart", "orders by charge", "a user's ledger".
INDEXES: dict[str, tuple[tuple[str, ...], ...]] = {
    "users": (("email",), ("discord_id",)),
    "instances": (("owner_id",), ("token_hash",)),
    "plan_transactions": (("user_id",), ("charge_id",), ("status",)),
    "withdrawals": (("user_id",), ("status",)),
    "ledger": (("user_id",),),
    "sandbox_charges": (("idempotency_key",), ("status",)),
    "sandbox_preferences": (("idempotency_key",),),
    "products": (("active",),),
    "stock": (("variant_id", "state"), ("fingerprint",), ("cart_id",), ("order_id",), ("state",)),
    "carts": (("buyer_id", "state"), ("state",)),
    "orders": (("status",), ("charge_id",), ("buyer_id",), ("cart_id",)),
    "deliveries": (("status",), ("order_id",)),
    "buyers": (("discord_id",),),
    "coupons": (("code",),),
    "postings": (("status",),),
    "subscriptions": (("buyer_id",), ("status",), ("product_id",)),
    "api_tokens": (("token_hash",), ("user_id",)),
    "webhook_events": (("status",),),
    "staff_notices": (("status",),),
    "stock_jobs": (("state",),),
    "stock_job_parts": (("job_id",),),
}


@dataclass(frozen=True)
class DomainPaths:
    """Every path of one domain. `directory` may not exist yet for a new instance."""

    domain: str
    directory: Path
    files: dict[str, tuple[str, ...]]
    journal: Path
    lock: Path

    @property
    def kind(self) -> str:
        return "portal" if self.domain == PORTAL else "instance"

    def file_of(self) -> dict[str, str]:
        """collection -> snapshot file name."""
        return {c: f for f, cs in self.files.items() for c in cs}

    def snapshot(self, name: str) -> Path:
        return self.directory / name


def domain_paths(data_dir: Path, domain: str) -> DomainPaths:
    if domain == PORTAL:
        return DomainPaths(
            domain=PORTAL,
            directory=data_dir,
            files=PORTAL_FILES,
            journal=data_dir / "portal.journal",
            lock=data_dir / ".portal.lock",
        )
    if not isinstance(domain, str) or not INSTANCE_ID_RE.fullmatch(domain):
        raise InvalidDomain(f"invalid instance id {domain!r}: expected ^[a-z0-9][a-z0-9-]{{2,39}}$")
    directory = data_dir / "instances" / domain
    return DomainPaths(
        domain=domain,
        directory=directory,
        files=INSTANCE_FILES,
        journal=directory / "journal.log",
        lock=directory / ".lock",
    )
