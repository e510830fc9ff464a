-- Brands (tenants), API keys, members.

-- A reference table: every tenant-owned row names one of these.
CREATE TABLE tenants (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code          text        NOT NULL UNIQUE CHECK (code ~ '^[a-z][a-z0-9-]{1,31}$'),
    name          text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status        text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    currency_id   bigint      NOT NULL,
    currency_code text        NOT NULL,
    -- Default expiry policy: credits expire this many days after they are made (NULL: never).
    expiry_days   integer     CHECK (expiry_days BETWEEN 1 AND 3650),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id     text        NOT NULL UNIQUE,
    kind       text        NOT NULL CHECK (kind IN ('operator', 'brand')),
    tenant_id  bigint      REFERENCES tenants (id),
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    key_hash   bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    CHECK ((kind = 'brand') = (tenant_id IS NOT NULL))
);
CREATE INDEX ix_api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE members (
    tenant_id   bigint      NOT NULL REFERENCES tenants (id),
    id          bigint      GENERATED ALWAYS AS IDENTITY,
    external_id text        NOT NULL CHECK (length(external_id) BETWEEN 1 AND 128),
    status      text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen')),
    account_id  bigint      NOT NULL,
    nickname    text        CHECK (length(nickname) <= 100),
    birthday    date,
    -- Personal data, AES-256-GCM (alliance.crypto.fields); never stored in clear.
    phone_enc   bytea,
    address_enc bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, external_id),
    UNIQUE (tenant_id, account_id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES ledger_accounts (tenant_id, id)
);
