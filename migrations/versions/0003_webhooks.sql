-- Webhook endpoints of brands and their deliveries (alliance.webhooks).

CREATE TABLE webhook_endpoints (
    tenant_id            bigint      NOT NULL REFERENCES tenants (id),
    id                   bigint      GENERATED ALWAYS AS IDENTITY,
    url                  text        NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
    description          text        CHECK (length(description) <= 500),
    -- Empty: every event type.
    event_types          text[]      NOT NULL DEFAULT '{}',
    -- The signing secret, AES-256-GCM (alliance.crypto.fields); never stored in clear.
    secret_enc           bytea       NOT NULL,
    status               text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    disabled_reason      text,
    consecutive_failures integer     NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CHECK ((status = 'disabled') = (disabled_reason IS NOT NULL))
);

CREATE TABLE webhook_deliveries (
    tenant_id        bigint      NOT NULL,
    id               bigint      GENERATED ALWAYS AS IDENTITY,
    endpoint_id      bigint      NOT NULL,
    -- The outbox event announced (no foreign key: relayed outbox rows may be pruned; the log stays).
    event_id         bigint      NOT NULL,
    event_type       text        NOT NULL,
    payload          jsonb       NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'succeeded', 'failed', 'abandoned')),
    attempts         integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- When the next attempt is due; only pending deliveries have one.
    next_attempt_at  timestamptz DEFAULT now(),
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    PRIMARY KEY (tenant_id, id),
    -- Deleting an endpoint deletes its delivery log with it.
    FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, id) ON DELETE CASCADE,
    -- One delivery per event and endpoint, however often the relay hands the event over.
    UNIQUE (tenant_id, endpoint_id, event_id),
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
-- An endpoint's delivery log, newest first.
CREATE INDEX ix_webhook_deliveries_log ON webhook_deliveries (tenant_id, endpoint_id, id DESC);
-- The retry sweep: pending deliveries by due time.
CREATE INDEX ix_webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
