-- Background loops ask which instances have work (Store.instances_with) instead of opening
-- every instance on every pass: the courier, for deliveries still pending (and the webhook
-- sender below; the subscription keeper asks for any subscription). An index led by the
-- field answers that across instances without reading every instance's rows.

CREATE INDEX docs_deliveries_status_domain
    ON docs_deliveries ((coalesce(doc->'status', 'null'::jsonb)), domain);

-- The outgoing-webhook sender: events still pending delivery to a seller's endpoint.
CREATE INDEX docs_webhook_events_status_domain
    ON docs_webhook_events ((coalesce(doc->'status', 'null'::jsonb)), domain);
