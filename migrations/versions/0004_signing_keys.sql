-- Brands' signing keys and replay refusal of signed requests (exchange.signing).

-- A brand's Ed25519 public keys. Several may be valid at once (rotation with overlap); a kid is never reused
-- within a tenant, revoked or not, so a stored signed transfer always names the key that made it.
CREATE TABLE signing_keys (
    tenant_id  bigint      NOT NULL REFERENCES tenants (id),
    id         bigint      GENERATED ALWAYS AS IDENTITY,
    kid        text        NOT NULL CHECK (kid ~ '^[A-Za-z0-9._-]{1,64}$'),
    -- The public key only: {"kty": "OKP", "crv": "Ed25519", "x": ...}; private members are refused.
    public_jwk jsonb       NOT NULL CHECK (
        public_jwk ->> 'kty' = 'OKP' AND public_jwk ->> 'crv' = 'Ed25519' AND public_jwk ? 'x'
        AND NOT public_jwk ? 'd'
    ),
    not_before timestamptz NOT NULL DEFAULT now(),
    not_after  timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, kid),
    CHECK (not_after IS NULL OR not_after > not_before)
);
-- Verification looks a kid up across tenants only to tell a foreign tenant's key from an unknown one.
CREATE INDEX ix_signing_keys_kid ON signing_keys (kid);

-- Signatures accepted within their staleness window: a second use of one is a replay. Rows past expires_at
-- no longer matter (such a signature is stale anyway) and may be pruned.
CREATE TABLE seen_signatures (
    tenant_id  bigint      NOT NULL,
    -- sha256 of the decoded JWS signature bytes.
    digest     bytea       NOT NULL CHECK (length(digest) = 32),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, digest)
);
CREATE INDEX ix_seen_signatures_expiry ON seen_signatures (expires_at);
