-- Staff notices (and a buyer's cart warning) wait here to be sent, so a crash loses none: the
-- process that committed their event writes them, the notifier sends them in order and marks
-- them sent. Ordered per instance by seq; the notifier asks which instances have some pending.

CREATE TABLE docs_staff_notices (
    domain text NOT NULL,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL CHECK (jsonb_typeof(doc) = 'object'),
    PRIMARY KEY (domain, id)
);
CREATE INDEX docs_staff_notices_order ON docs_staff_notices (domain, seq);
CREATE INDEX docs_staff_notices_by_status
    ON docs_staff_notices (domain, (coalesce(doc->'status', 'null'::jsonb)), seq);
CREATE INDEX docs_staff_notices_status_domain
    ON docs_staff_notices ((coalesce(doc->'status', 'null'::jsonb)), domain);
