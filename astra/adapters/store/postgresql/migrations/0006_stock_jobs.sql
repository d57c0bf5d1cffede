-- Big stock imports run as jobs (astra/domain/services/stock_imports.py): the job itself (state,
-- progress, report) and its keys, sealed, in parts that each become stock in one transaction.
-- The same shape as 0001; the indexes are those the JSON store declares (layout.py INDEXES),
-- plus the cross-instance one the importer loop asks with (as 0004).

CREATE TABLE docs_stock_jobs (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_stock_jobs_order ON docs_stock_jobs (domain, seq);
CREATE INDEX docs_stock_jobs_by_state ON docs_stock_jobs (domain, (coalesce(doc->'state', 'null'::jsonb)), seq);
CREATE INDEX docs_stock_jobs_state_domain
    ON docs_stock_jobs ((coalesce(doc->'state', 'null'::jsonb)), domain);

CREATE TABLE docs_stock_job_parts (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_stock_job_parts_order ON docs_stock_job_parts (domain, seq);
CREATE INDEX docs_stock_job_parts_by_job_id ON docs_stock_job_parts (domain, (coalesce(doc->'job_id', 'null'::jsonb)), seq);
