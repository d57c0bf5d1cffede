-- Astra's documents on PostgreSQL: one table per collection, JSONB per document.
--
-- `domain` is 'portal' or an instance id (what the JSON store keeps in one directory); `seq` is
-- the insertion order that `find`/`all` return (an update keeps it; delete + insert moves the
-- document to the end, as in the JSON store). Every field set the JSON store indexes
-- (astra/adapters/store/json/layout.py INDEXES) has an expression index here, ending in `seq`
-- so that an indexed `find` needs no sort. Values are compared as JSONB with a missing field
-- equal to JSON null (`coalesce(doc->'f', 'null')`), which is what `doc.get(f) == None` means.

-- Domains that hold data (`instance_ids()`); a row appears with the first commit that writes.
CREATE TABLE astra_domains (
    id text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);


CREATE TABLE docs_users (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_users_order ON docs_users (domain, seq);
CREATE INDEX docs_users_by_email ON docs_users (domain, (coalesce(doc->'email', 'null'::jsonb)), seq);
CREATE INDEX docs_users_by_discord_id ON docs_users (domain, (coalesce(doc->'discord_id', 'null'::jsonb)), seq);

CREATE TABLE docs_instances (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_instances_order ON docs_instances (domain, seq);
CREATE INDEX docs_instances_by_owner_id ON docs_instances (domain, (coalesce(doc->'owner_id', 'null'::jsonb)), seq);
CREATE INDEX docs_instances_by_token_hash ON docs_instances (domain, (coalesce(doc->'token_hash', 'null'::jsonb)), seq);

CREATE TABLE docs_plan_transactions (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_plan_transactions_order ON docs_plan_transactions (domain, seq);
CREATE INDEX docs_plan_transactions_by_user_id ON docs_plan_transactions (domain, (coalesce(doc->'user_id', 'null'::jsonb)), seq);
CREATE INDEX docs_plan_transactions_by_charge_id ON docs_plan_transactions (domain, (coalesce(doc->'charge_id', 'null'::jsonb)), seq);
CREATE INDEX docs_plan_transactions_by_status ON docs_plan_transactions (domain, (coalesce(doc->'status', 'null'::jsonb)), seq);

CREATE TABLE docs_withdrawals (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_withdrawals_order ON docs_withdrawals (domain, seq);
CREATE INDEX docs_withdrawals_by_user_id ON docs_withdrawals (domain, (coalesce(doc->'user_id', 'null'::jsonb)), seq);
CREATE INDEX docs_withdrawals_by_status ON docs_withdrawals (domain, (coalesce(doc->'status', 'null'::jsonb)), seq);

CREATE TABLE docs_ledger (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_ledger_order ON docs_ledger (domain, seq);
CREATE INDEX docs_ledger_by_user_id ON docs_ledger (domain, (coalesce(doc->'user_id', 'null'::jsonb)), seq);

CREATE TABLE docs_plugin_toggles (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_plugin_toggles_order ON docs_plugin_toggles (domain, seq);

CREATE TABLE docs_audit (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_audit_order ON docs_audit (domain, seq);

CREATE TABLE docs_meta (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_meta_order ON docs_meta (domain, seq);

CREATE TABLE docs_sandbox_charges (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_sandbox_charges_order ON docs_sandbox_charges (domain, seq);
CREATE INDEX docs_sandbox_charges_by_idempotency_key ON docs_sandbox_charges (domain, (coalesce(doc->'idempotency_key', 'null'::jsonb)), seq);
CREATE INDEX docs_sandbox_charges_by_status ON docs_sandbox_charges (domain, (coalesce(doc->'status', 'null'::jsonb)), seq);

CREATE TABLE docs_products (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_products_order ON docs_products (domain, seq);
CREATE INDEX docs_products_by_active ON docs_products (domain, (coalesce(doc->'active', 'null'::jsonb)), seq);

CREATE TABLE docs_stock (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_stock_order ON docs_stock (domain, seq);
CREATE INDEX docs_stock_by_variant_id_state ON docs_stock (domain, (coalesce(doc->'variant_id', 'null'::jsonb)), (coalesce(doc->'state', 'null'::jsonb)), seq);
CREATE INDEX docs_stock_by_fingerprint ON docs_stock (domain, (coalesce(doc->'fingerprint', 'null'::jsonb)), seq);
CREATE INDEX docs_stock_by_cart_id ON docs_stock (domain, (coalesce(doc->'cart_id', 'null'::jsonb)), seq);
CREATE INDEX docs_stock_by_order_id ON docs_stock (domain, (coalesce(doc->'order_id', 'null'::jsonb)), seq);
CREATE INDEX docs_stock_by_state ON docs_stock (domain, (coalesce(doc->'state', 'null'::jsonb)), seq);

CREATE TABLE docs_carts (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_carts_order ON docs_carts (domain, seq);
CREATE INDEX docs_carts_by_buyer_id_state ON docs_carts (domain, (coalesce(doc->'buyer_id', 'null'::jsonb)), (coalesce(doc->'state', 'null'::jsonb)), seq);
CREATE INDEX docs_carts_by_state ON docs_carts (domain, (coalesce(doc->'state', 'null'::jsonb)), seq);

CREATE TABLE docs_orders (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_orders_order ON docs_orders (domain, seq);
CREATE INDEX docs_orders_by_status ON docs_orders (domain, (coalesce(doc->'status', 'null'::jsonb)), seq);
CREATE INDEX docs_orders_by_charge_id ON docs_orders (domain, (coalesce(doc->'charge_id', 'null'::jsonb)), seq);
CREATE INDEX docs_orders_by_buyer_id ON docs_orders (domain, (coalesce(doc->'buyer_id', 'null'::jsonb)), seq);
CREATE INDEX docs_orders_by_cart_id ON docs_orders (domain, (coalesce(doc->'cart_id', 'null'::jsonb)), seq);

CREATE TABLE docs_deliveries (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_deliveries_order ON docs_deliveries (domain, seq);
CREATE INDEX docs_deliveries_by_status ON docs_deliveries (domain, (coalesce(doc->'status', 'null'::jsonb)), seq);
CREATE INDEX docs_deliveries_by_order_id ON docs_deliveries (domain, (coalesce(doc->'order_id', 'null'::jsonb)), seq);

CREATE TABLE docs_buyers (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_buyers_order ON docs_buyers (domain, seq);
CREATE INDEX docs_buyers_by_discord_id ON docs_buyers (domain, (coalesce(doc->'discord_id', 'null'::jsonb)), seq);

CREATE TABLE docs_coupons (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_coupons_order ON docs_coupons (domain, seq);
CREATE INDEX docs_coupons_by_code ON docs_coupons (domain, (coalesce(doc->'code', 'null'::jsonb)), seq);

CREATE TABLE docs_settings (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_settings_order ON docs_settings (domain, seq);

CREATE TABLE docs_postings (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_postings_order ON docs_postings (domain, seq);
CREATE INDEX docs_postings_by_status ON docs_postings (domain, (coalesce(doc->'status', 'null'::jsonb)), seq);
-- A refund finds the posting of its order: not declared in the JSON store, a query all the same.
CREATE INDEX docs_postings_by_order_id ON docs_postings (domain, (coalesce(doc->'order_id', 'null'::jsonb)), seq);
