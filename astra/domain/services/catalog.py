"""Products, variants and key stock of one instance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from astra.domain.catalog import Product, variant_from_input
from astra.domain.errors import InvalidInput, NotFoundError
from astra.domain.ids import new_id
from astra.domain.services.audit_log import record
from astra.domain.services.publishing import EventPublisher
from astra.domain.services.stock_imports import StockImports, product_with_variant
from astra.domain.stock import ImportReport, KeyState
from astra.domain.timestamps import iso
from astra.ports.clock import Clock
from astra.ports.secrets import InstanceVault
from astra.ports.store import Store

_EDITABLE = (
    "name",
    "description",
    "category",
    "image_url",
    "banner_url",
    "active",
    "delivery_kind",
    "dm_template",
    "content",
    # issue 15: branding
    "color",
    "show_thumbnail",
    "footer_text",
    "sections",
    "demo_url",
    "demo_label",
    "staff_dm_template",
    "unlimited_stock",
)

VaultProvider = Callable[[str], InstanceVault]

# The stock editor lists this many keys of a variant at most, and removes this many at once.
MAX_KEYS_LISTED = 1000
MAX_KEYS_REMOVED = 1000


def _variants_from_input(raw: Any, existing: dict[str, Any] | None = None) -> list:
    if not isinstance(raw, list):
        raise InvalidInput("invalid_field", field="variants")
    variants = []
    for item in raw:
        vid = item.get("id") if isinstance(item, dict) else None
        if vid is not None and (existing is None or vid not in existing):
            raise InvalidInput("invalid_field", field="variants.id")
        variants.append(variant_from_input(item, vid or new_id("var")))
    return variants


class CatalogService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        vaults: VaultProvider,
        publisher: EventPublisher | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.vaults = vaults
        self.publisher = publisher
        self.imports = StockImports(store, clock, vaults, publisher)

    # -- products ------------------------------------------------------------------------------

    def create_product(self, instance_id: str, data: dict[str, Any], *, actor: str) -> Product:
        if not isinstance(data, dict):
            raise InvalidInput("invalid_field", field="product")
        now = iso(self.clock.now())
        unknown = set(data) - {*_EDITABLE, "variants"}
        if unknown:
            raise InvalidInput("invalid_field", field=sorted(unknown)[0])
        product = Product(
            id=new_id("prod"),
            name=data.get("name", ""),
            variants=_variants_from_input(data.get("variants")),
            description=data.get("description", ""),
            category=data.get("category", ""),
            image_url=data.get("image_url", ""),
            banner_url=data.get("banner_url", ""),
            active=bool(data.get("active", True)),
            delivery_kind=data.get("delivery_kind", "key"),
            dm_template=data.get("dm_template", ""),
            content=data.get("content", ""),
            color=data.get("color"),
            show_thumbnail=data.get("show_thumbnail", True),
            footer_text=data.get("footer_text", ""),
            sections=data.get("sections") or [],
            demo_url=data.get("demo_url", ""),
            demo_label=data.get("demo_label", ""),
            staff_dm_template=data.get("staff_dm_template", ""),
            unlimited_stock=data.get("unlimited_stock", False),
            created_at=now,
            updated_at=now,
        ).validate()
        with self.store.instance(instance_id) as uow:
            uow.products.add(product.to_doc())
            record(
                uow,
                at=self.clock.now(),
                actor=actor,
                action="product.created",
                target=f"product:{product.id}",
                name=product.name,
                variants=[(v.name, v.price_cents) for v in product.variants],
            )
            uow.commit()
        return product

    def update_product(
        self, instance_id: str, product_id: str, changes: dict[str, Any], *, actor: str
    ) -> Product:
        if not isinstance(changes, dict):
            raise InvalidInput("invalid_field", field="product")
        unknown = set(changes) - {*_EDITABLE, "variants"}
        if unknown:
            raise InvalidInput("invalid_field", field=sorted(unknown)[0])
        with self.store.instance(instance_id) as uow:
            doc = uow.products.get(product_id)
            if doc is None:
                raise NotFoundError("produto", product_id)
            product = Product.from_doc(doc)
            for key in _EDITABLE:
                if key in changes:
                    setattr(product, key, changes[key])
            if "variants" in changes:
                current = {v.id: v for v in product.variants}
                new_variants = _variants_from_input(changes["variants"], current)
                kept = {v.id for v in new_variants}
                for gone in set(current) - kept:
                    # Keys of a removed variant would be stranded: refuse while any exist.
                    if uow.stock.count(
                        variant_id=gone, state=str(KeyState.AVAILABLE)
                    ) or uow.stock.count(variant_id=gone, state=str(KeyState.RESERVED)):
                        raise InvalidInput(
                            "invalid_field", field=f"variants ({current[gone].name} has stock)"
                        )
                product.variants = new_variants
            product.updated_at = iso(self.clock.now())
            product.validate()
            uow.products.put(product.to_doc())
            record(
                uow,
                at=self.clock.now(),
                actor=actor,
                action="product.updated",
                target=f"product:{product_id}",
                fields=sorted(changes),
            )
            uow.commit()
        return product

    def draft_product(
        self, instance_id: str, data: dict[str, Any], product_id: str | None = None
    ) -> Product:
        """The product `data` describes, validated like a save and never saved: a new one, or
        `product_id` with these changes (the product editor's preview)."""
        if not isinstance(data, dict):
            raise InvalidInput("invalid_field", field="product")
        unknown = set(data) - {*_EDITABLE, "variants"}
        if unknown:
            raise InvalidInput("invalid_field", field=sorted(unknown)[0])
        if product_id is not None:
            product = self.get_product(instance_id, product_id)
            current = {v.id: v for v in product.variants}
        else:
            product = Product(id="prod_preview", name="", variants=[])
            current = {}
        for key in _EDITABLE:
            if key in data:
                setattr(product, key, data[key])
        if "variants" in data:
            product.variants = _variants_from_input(data["variants"], current or None)
        return product.validate()

    def remove_product(self, instance_id: str, product_id: str, *, actor: str) -> Product:
        """Take a product off sale. Its keys and its orders stay: nothing sold or stocked is
        ever deleted, and the seller can bring it back."""
        return self.update_product(instance_id, product_id, {"active": False}, actor=actor)

    def record_posts(self, instance_id: str, product_id: str, posts: list[dict[str, str]]) -> None:
        """Where the product is posted ({channel_id, message_id}), so it can be reposted.

        A post made now is stamped with the product's version (`updated_at`) and the time: the
        admin's posts view calls a post stale when the product changed after it. A post that
        was already recorded keeps its stamps."""
        with self.store.instance(instance_id) as uow:
            doc = uow.products.get(product_id)
            if doc is None:
                raise NotFoundError("produto", product_id)
            known = {(p.get("channel_id"), p.get("message_id")): p for p in doc.get("posts") or []}
            now = iso(self.clock.now())
            kept = []
            for p in posts:
                post = {k: str(p[k]) for k in ("channel_id", "message_id", "banner_message_id")
                        if p.get(k)}
                before = known.get((post["channel_id"], post["message_id"])) or {}
                post["posted_at"] = before.get("posted_at") or now
                post["version"] = before.get("version") or doc.get("updated_at")
                kept.append(post)
            doc["posts"] = kept[-25:]
            uow.products.put(doc)
            uow.commit()

    def get_product(self, instance_id: str, product_id: str) -> Product:
        with self.store.instance(instance_id, write=False) as uow:
            doc = uow.products.get(product_id)
        if doc is None:
            raise NotFoundError("produto", product_id)
        return Product.from_doc(doc)

    def list_products(self, instance_id: str, *, include_inactive: bool = True) -> list[Product]:
        with self.store.instance(instance_id, write=False) as uow:
            docs = uow.products.all()
        products = [Product.from_doc(d) for d in docs]
        return [p for p in products if include_inactive or p.active]

    # -- stock ---------------------------------------------------------------------------------

    def import_stock(
        self,
        instance_id: str,
        product_id: str,
        variant_id: str,
        data: bytes | str,
        *,
        actor: str,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> ImportReport:
        """Add one key per line. Blank lines, oversized or control-character lines, duplicates in
        the file and keys already in stock (any state, any variant) are skipped and counted.

        Done here to the end, in chunks of one unit of work each (see stock_imports.py);
        `progress(job view)` after each chunk of a big import. The portal starts big imports
        as jobs instead (`imports.start`)."""
        return self.imports.import_all(
            instance_id, product_id, variant_id, data, actor=actor, progress=progress
        )

    def stock_counts(self, instance_id: str) -> dict[str, dict[str, int]]:
        """variant id -> {available, reserved, sold}."""
        with self.store.instance(instance_id, write=False) as uow:
            products = [Product.from_doc(d) for d in uow.products.all()]
            counts: dict[str, dict[str, int]] = {}
            for product in products:
                for v in product.variants:
                    counts[v.id] = {
                        state.value: uow.stock.count(variant_id=v.id, state=state.value)
                        for state in KeyState
                    }
        return counts

    def reveal_keys(
        self, instance_id: str, variant_id: str, state: KeyState, *, actor: str, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Keys in clear for the seller who owns them; the reveal itself is audited."""
        vault = self.vaults(instance_id)
        with self.store.instance(instance_id) as uow:
            items = uow.stock.find(variant_id=variant_id, state=state.value)[:limit]
            out = [
                {
                    "id": d["id"],
                    "key": vault.decrypt(d["secret"], context=d["fingerprint"]),
                    "state": d["state"],
                    "order_id": d.get("order_id"),
                }
                for d in items
            ]
            record(
                uow,
                at=self.clock.now(),
                actor=actor,
                action="stock.revealed",
                target=f"variant:{variant_id}",
                state=state.value,
                count=len(out),
            )
            uow.commit()
        return out

    # -- the stock editor: keys listed masked, available ones removed ----------------------------

    def list_keys(
        self,
        instance_id: str,
        product_id: str,
        variant_id: str | None = None,
        *,
        limit: int = MAX_KEYS_LISTED,
    ) -> dict[str, Any]:
        """A variant's keys (every variant's with None) for the seller's stock editor, masked
        (`AB••••YZ`): enough to tell keys apart, never the key. Available first, then
        reserved, then sold (newest first)."""
        vault = self.vaults(instance_id)
        with self.store.instance(instance_id, write=False) as uow:
            if variant_id is None:
                doc = uow.products.get(product_id)
                if doc is None:
                    raise NotFoundError("produto", product_id)
                docs = uow.stock.find(product_id=product_id)
            else:
                product_with_variant(uow, product_id, variant_id)
                docs = uow.stock.find(variant_id=variant_id)
        order = {str(KeyState.AVAILABLE): 0, str(KeyState.RESERVED): 1, str(KeyState.SOLD): 2}
        docs.sort(key=lambda d: d.get("sold_at") or d.get("added_at") or "", reverse=True)
        docs.sort(key=lambda d: order.get(d.get("state"), 3))
        keys = []
        for d in docs[:limit]:
            try:
                masked = mask_key(vault.decrypt(d["secret"], context=d["fingerprint"]))
            except Exception:  # a key sealed with a lost key: listed, never shown
                masked = "••••"
            keys.append(
                {
                    "id": d["id"],
                    "variant_id": d.get("variant_id"),
                    "masked": masked,
                    "state": d["state"],
                    "removable": d["state"] == str(KeyState.AVAILABLE),
                    "added_at": d.get("added_at"),
                    "reserved_until": d.get("reserved_until"),
                    "order_id": d.get("order_id"),
                    "sold_at": d.get("sold_at"),
                }
            )
        counts = {state.value: 0 for state in KeyState}
        for d in docs:
            counts[d["state"]] = counts.get(d["state"], 0) + 1
        return {"variant_id": variant_id, "keys": keys, "counts": counts, "total": len(docs)}

    def remove_keys(
        self,
        instance_id: str,
        product_id: str,
        variant_id: str,
        key_ids: list[str],
        *,
        actor: str,
    ) -> dict[str, Any]:
        """Delete the chosen keys that are still available. Each key's state is read and the
        key deleted in one write unit of work, under the same lock a cart takes to reserve a
        key: a key a cart reserved (or sold) in the meantime is kept and reported, never
        removed. Unknown ids, or ids of another variant, are reported as not found."""
        if (
            not isinstance(key_ids, list)
            or not key_ids
            or len(key_ids) > MAX_KEYS_REMOVED
            or not all(isinstance(k, str) and 0 < len(k) <= 64 for k in key_ids)
        ):
            raise InvalidInput("invalid_field", field="key_ids")
        removed: list[str] = []
        kept: list[dict[str, str]] = []
        missing: list[str] = []
        with self.store.instance(instance_id) as uow:
            product_with_variant(uow, product_id, variant_id)
            for key_id in dict.fromkeys(key_ids):
                doc = uow.stock.get(key_id)
                if doc is None or doc.get("variant_id") != variant_id:
                    missing.append(key_id)
                elif doc.get("state") != str(KeyState.AVAILABLE):
                    kept.append({"id": key_id, "state": doc["state"]})
                else:
                    uow.stock.delete(key_id)
                    removed.append(key_id)
            if removed:
                record(
                    uow,
                    at=self.clock.now(),
                    actor=actor,
                    action="stock.removed",
                    target=f"variant:{variant_id}",
                    product_id=product_id,
                    removed=len(removed),
                    kept=len(kept),
                    key_ids=removed[:100],
                )
                uow.commit()
        return {"removed": removed, "kept": kept, "not_found": missing}




def mask_key(key: str) -> str:
    """The first and last few characters of a key, the rest hidden: never more than a quarter
    of the key (four and four of a key of 32 or more), nothing of a key under 8."""
    shown = min(4, len(key) // 8)
    if shown == 0:
        return "••••"
    return f"{key[:shown]}••••{key[-shown:]}"
