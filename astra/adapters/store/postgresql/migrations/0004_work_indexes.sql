-- Background loops ask which instances have work (Store.instances_with) instead of opening
-- every instance on every pass: the courier, for deliveries still pending (and the webhook
-- sender and the housekeeping below; the subscription keeper asks for any subscription). An
-- index led by the field answers that across instances without reading every instance's rows.

CREATE INDEX docs_deliveries_status_domain
    ON docs_deliveries ((coalesce(doc->'status', 'null'::jsonb)), domain);

-- The outgoing-webhook sender: events still pending delivery to a seller's endpoint.
CREATE INDEX docs_webhook_events_status_domain
    ON docs_webhook_events ((coalesce(doc->'status', 'null'::jsonb)), domain);

-- The housekeeping loop: live carts (to warn or expire) and postings still to settle.
CREATE INDEX docs_carts_state_domain
    ON docs_carts ((coalesce(doc->'state', 'null'::jsonb)), domain);
CREATE INDEX docs_postings_status_domain
    ON docs_postings ((coalesce(doc->'status', 'null'::jsonb)), domain);
