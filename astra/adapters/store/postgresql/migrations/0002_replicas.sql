-- What `astra serve` replicas on one database share besides the store
-- (astra/adapters/coordination/postgresql.py). Leader leases need no table: they are
-- session-level advisory locks.

-- Payment notifications accepted by any replica and not yet processed. A worker claims the
-- oldest due row with FOR UPDATE SKIP LOCKED and deletes it when done.
CREATE TABLE webhook_inbox (
    id          bigserial PRIMARY KEY,
    charge_id   text        NOT NULL,
    accepted_at timestamptz NOT NULL,
    not_before  timestamptz NOT NULL DEFAULT now(),
    tries       integer     NOT NULL DEFAULT 0
);
CREATE INDEX webhook_inbox_due ON webhook_inbox (not_before, id);
CREATE INDEX webhook_inbox_charge ON webhook_inbox (charge_id);

-- Login and sign-up throttles: events in a sliding window, and timed locks, by key.
CREATE TABLE throttle_events (
    key text        NOT NULL,
    at  timestamptz NOT NULL
);
CREATE INDEX throttle_events_key_at ON throttle_events (key, at);
CREATE INDEX throttle_events_at ON throttle_events (at);

CREATE TABLE throttle_locks (
    key   text PRIMARY KEY,
    until timestamptz NOT NULL
);
CREATE INDEX throttle_locks_until ON throttle_locks (until);
