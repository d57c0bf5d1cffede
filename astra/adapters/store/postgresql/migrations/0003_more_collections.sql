-- Collections added with subscriptions (issue 18), the seller API (API tokens, outgoing
-- webhooks) and Checkout Pro in the sandbox: the same shape as 0001, one expression index per
-- field set the JSON store indexes (astra/adapters/store/json/layout.py INDEXES).

CREATE TABLE docs_api_tokens (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_api_tokens_order ON docs_api_tokens (domain, seq);
CREATE INDEX docs_api_tokens_by_token_hash ON docs_api_tokens (domain, (coalesce(doc->'token_hash', 'null'::jsonb)), seq);
CREATE INDEX docs_api_tokens_by_user_id ON docs_api_tokens (domain, (coalesce(doc->'user_id', 'null'::jsonb)), seq);

CREATE TABLE docs_sandbox_preferences (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_sandbox_preferences_order ON docs_sandbox_preferences (domain, seq);
CREATE INDEX docs_sandbox_preferences_by_idempotency_key ON docs_sandbox_preferences (domain, (coalesce(doc->'idempotency_key', 'null'::jsonb)), seq);

CREATE TABLE docs_subscriptions (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_subscriptions_order ON docs_subscriptions (domain, seq);
CREATE INDEX docs_subscriptions_by_buyer_id ON docs_subscriptions (domain, (coalesce(doc->'buyer_id', 'null'::jsonb)), seq);
CREATE INDEX docs_subscriptions_by_status ON docs_subscriptions (domain, (coalesce(doc->'status', 'null'::jsonb)), seq);
CREATE INDEX docs_subscriptions_by_product_id ON docs_subscriptions (domain, (coalesce(doc->'product_id', 'null'::jsonb)), seq);

CREATE TABLE docs_webhook_endpoints (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_webhook_endpoints_order ON docs_webhook_endpoints (domain, seq);

CREATE TABLE docs_webhook_events (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_webhook_events_order ON docs_webhook_events (domain, seq);
CREATE INDEX docs_webhook_events_by_status ON docs_webhook_events (domain, (coalesce(doc->'status', 'null'::jsonb)), seq);
