-- The internal API's answers to writes sent with an Idempotency-Key
-- (astra/adapters/coordination/postgresql.py, PostgresReplays): shared by the replicas, so a
-- bot's retry that reaches another replica gets the first answer. The housekeeping loop's
-- leader deletes rows past their keep.
CREATE TABLE internal_replays (
    instance_id text        NOT NULL,
    key         text        NOT NULL,
    status      integer     NOT NULL,
    body        bytea       NOT NULL,
    at          timestamptz NOT NULL,
    PRIMARY KEY (instance_id, key)
);
CREATE INDEX internal_replays_at ON internal_replays (at);
