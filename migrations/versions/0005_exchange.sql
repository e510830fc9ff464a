-- The exchange (exchange.*): brands admitted to it, the pairs that may convert, versioned rate cards, quotes,
-- alliance identities, and conversions: two-phase transfers over two brands' ledgers, within net debit caps.
--
-- Invariants the operations below keep, whatever the concurrency:
--   * a conversion moves value only as two balanced entries, one per brand, written in one transaction:
--     source member -> source clearing (source points), target clearing -> target member (target points)
--   * target points issued <= (source points - fee) x rate, and rate x target point value <= source point value,
--     so the member never receives more value than was debited less the fee; the fraction of a target point
--     not issued is recorded on the conversion (remainder)
--   * a brand's net debit (reserved + committed out - committed in, in the settlement currency) never exceeds its
--     cap; member daily limits and pair daily caps are never exceeded
--   * a reservation past its deadline is never committed
-- Every refusal is a named result, raised inside as SQLSTATE AL001 (MESSAGE = code, DETAIL = JSON detail) so a
-- refusal undoes whatever the operation had written, and returned as {"ok": false, "code", "detail"}.

-- Brands admitted to the exchange, with what each may owe the alliance within a settlement window.
CREATE TABLE exchange_participants (
    tenant_id         bigint         PRIMARY KEY REFERENCES tenants (id),
    status            text           NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    -- In the settlement currency: reserved + debits - credits (its net debit) may never exceed it.
    net_debit_cap     numeric(20, 2) NOT NULL CHECK (net_debit_cap >= 0),
    -- net_debit_cap.alarm fires once a window when the position reaches this share of the cap.
    cap_alarm_percent smallint       NOT NULL DEFAULT 80 CHECK (cap_alarm_percent BETWEEN 1 AND 100),
    admitted_at       timestamptz    NOT NULL DEFAULT now(),
    updated_at        timestamptz    NOT NULL DEFAULT now()
);

-- Settlement windows, normally one per business day; exactly one is open, and the exchange's conversions commit
-- into it. Settlement (settlement/, migrations/0007) closes it, which opens the next, and settles it:
--   open -> closed -> pending_settlement -> settled, or disputed (an open dispute), or aborted (before any payment)
CREATE TABLE exchange_windows (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    business_date date        NOT NULL UNIQUE,
    status        text        NOT NULL DEFAULT 'open' CHECK (status IN (
                                  'open', 'closed', 'pending_settlement', 'settled', 'disputed', 'aborted')),
    opened_at     timestamptz NOT NULL DEFAULT now(),
    closed_at     timestamptz,  -- the cut-off: conversions committed after it belong to the next window
    computed_at   timestamptz,
    resolved_at   timestamptz,  -- settled or aborted
    CHECK ((status = 'open') = (closed_at IS NULL)),
    CHECK ((status IN ('open', 'closed')) = (computed_at IS NULL) OR status = 'aborted'),
    CHECK ((status IN ('settled', 'aborted')) = (resolved_at IS NOT NULL))
);
CREATE UNIQUE INDEX ux_exchange_windows_one_open ON exchange_windows ((true)) WHERE status = 'open';

-- Each brand's running position in the open window, in the settlement currency. Hot: every conversion from the
-- brand updates its row (the net debit cap is checked there).
CREATE TABLE exchange_positions (
    tenant_id    bigint          PRIMARY KEY REFERENCES exchange_participants (tenant_id),
    window_id    bigint          NOT NULL REFERENCES exchange_windows (id),
    reserved     numeric(38, 12) NOT NULL DEFAULT 0 CHECK (reserved >= 0),  -- gross value of open reservations
    debits       numeric(38, 12) NOT NULL DEFAULT 0 CHECK (debits >= 0),    -- gross value committed out
    fees         numeric(38, 12) NOT NULL DEFAULT 0 CHECK (fees >= 0),      -- fees within debits
    alarm_raised boolean         NOT NULL DEFAULT false,
    updated_at   timestamptz     NOT NULL DEFAULT now()
);

-- What each brand is owed for conversions into it in the open window (net value), in shards: a conversion adds to
-- one shard of its target's, so conversions into a brand never queue on its position. Credits only lower a net
-- debit, so a cap check that sums them without a lock (missing one not yet committed) errs on the safe side.
CREATE TABLE exchange_position_credits (
    tenant_id bigint          NOT NULL REFERENCES exchange_positions (tenant_id),
    shard     smallint        NOT NULL CHECK (shard >= 0),
    credits   numeric(38, 12) NOT NULL DEFAULT 0 CHECK (credits >= 0),
    PRIMARY KEY (tenant_id, shard)
);

-- Which brand's points may be converted into which brand's (directed: A -> B open says nothing of B -> A).
CREATE TABLE exchange_pairs (
    source_tenant_id bigint      NOT NULL REFERENCES exchange_participants (tenant_id),
    target_tenant_id bigint      NOT NULL REFERENCES exchange_participants (tenant_id),
    status           text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_tenant_id, target_tenant_id),
    CHECK (source_tenant_id <> target_tenant_id)
);

-- Rate cards, versioned per pair; the card in force at an instant is the latest effective at or before it, so a
-- new version can be announced ahead. Cards are never changed: a change is a new version.
CREATE TABLE exchange_rate_cards (
    id                 bigint          GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_tenant_id   bigint          NOT NULL,
    target_tenant_id   bigint          NOT NULL,
    version            integer         NOT NULL CHECK (version >= 1),
    effective_at       timestamptz     NOT NULL,
    -- Target points per source point; NULL: derived from the two point values in force when priced.
    rate               numeric(30, 12) CHECK (rate > 0),
    fee_bps            integer         NOT NULL CHECK (fee_bps BETWEEN 0 AND 9999),
    min_amount         bigint          NOT NULL CHECK (min_amount >= 1),
    max_amount         bigint          NOT NULL,
    -- Source points per member, and per pair, per business day; NULL: no limit.
    member_daily_limit bigint          CHECK (member_daily_limit >= 1),
    pair_daily_cap     bigint          CHECK (pair_daily_cap >= 1),
    quote_ttl_seconds  integer         NOT NULL DEFAULT 30 CHECK (quote_ttl_seconds BETWEEN 5 AND 600),
    created_at         timestamptz     NOT NULL DEFAULT now(),
    FOREIGN KEY (source_tenant_id, target_tenant_id) REFERENCES exchange_pairs (source_tenant_id, target_tenant_id),
    UNIQUE (source_tenant_id, target_tenant_id, version),
    UNIQUE (source_tenant_id, target_tenant_id, effective_at),
    CHECK (max_amount >= min_amount AND max_amount <= 1000000000000)
);
CREATE TRIGGER rate_cards_immutable BEFORE UPDATE OR DELETE ON exchange_rate_cards
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- Source points converted per pair and business day: by one member (member_account_id), or by all (0).
-- Only counted where the rate card sets the limit.
CREATE TABLE exchange_daily_usage (
    source_tenant_id  bigint NOT NULL,
    target_tenant_id  bigint NOT NULL,
    business_date     date   NOT NULL,
    member_account_id bigint NOT NULL,
    amount            bigint NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (source_tenant_id, target_tenant_id, business_date, member_account_id)
);

-- A person's memberships of several brands, linked only with their consent (a link code one brand issues to the
-- member and the member redeems at another). public_id is the handle a friend names to receive a gift.
CREATE TABLE alliance_identities (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    public_id  text        NOT NULL UNIQUE CHECK (public_id ~ '^idn_[a-z2-7]{16}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alliance_links (
    tenant_id   bigint      NOT NULL,
    external_id text        NOT NULL,
    identity_id bigint      NOT NULL REFERENCES alliance_identities (id),
    linked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, external_id),
    UNIQUE (identity_id, tenant_id),  -- one membership per brand per person
    FOREIGN KEY (tenant_id, external_id) REFERENCES members (tenant_id, external_id)
);

CREATE TABLE alliance_link_codes (
    tenant_id          bigint      NOT NULL,
    id                 bigint      GENERATED ALWAYS AS IDENTITY,
    external_id        text        NOT NULL,
    code_hash          bytea       NOT NULL UNIQUE CHECK (length(code_hash) = 32),  -- sha256; the code is shown once
    expires_at         timestamptz NOT NULL,
    redeemed_at        timestamptz,
    redeemed_by_tenant bigint,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, external_id) REFERENCES members (tenant_id, external_id),
    CHECK ((redeemed_at IS NULL) = (redeemed_by_tenant IS NULL))
);

-- A price locked for a short time; a conversion may use it once.
CREATE TABLE exchange_quotes (
    tenant_id          bigint          NOT NULL,  -- the source brand
    id                 bigint          GENERATED ALWAYS AS IDENTITY,
    target_tenant_id   bigint          NOT NULL,
    rate_card_id       bigint          NOT NULL,  -- (no foreign key: see exchange_conversions)
    source_amount      bigint          NOT NULL CHECK (source_amount > 0),
    fee_amount         bigint          NOT NULL CHECK (fee_amount >= 0),
    target_amount      bigint          NOT NULL CHECK (target_amount > 0),
    rate               numeric(30, 12) NOT NULL,
    remainder          numeric(30, 12) NOT NULL,
    source_point_value numeric(30, 12) NOT NULL,
    target_point_value numeric(30, 12) NOT NULL,
    currency           char(3)         NOT NULL,
    expires_at         timestamptz     NOT NULL,
    conversion_id      bigint,
    created_at         timestamptz     NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id)
);

-- No foreign keys to the rate cards or the windows: every conversion would take a KEY SHARE lock on the same few
-- hot rows (one open window), and concurrent share locks on one row cost PostgreSQL a MultiXact each. The
-- functions below write these ids, read from those tables.
CREATE TABLE exchange_conversions (
    tenant_id           bigint          NOT NULL,  -- the source brand, whose member's points go out
    id                  bigint          GENERATED BY DEFAULT AS IDENTITY,
    target_tenant_id    bigint          NOT NULL,
    status              text            NOT NULL CHECK (status IN ('reserved', 'committed', 'aborted', 'expired')),
    source_member       text            NOT NULL,
    source_account_id   bigint          NOT NULL,
    source_identity     text,           -- the source member's alliance identity, if linked
    target_member       text            NOT NULL,
    target_account_id   bigint          NOT NULL,
    target_identity     text            NOT NULL,
    quote_id            bigint,
    rate_card_id        bigint          NOT NULL,
    -- The price, snapshotted: the points, the rate, both point values and the values in the settlement currency.
    source_amount       bigint          NOT NULL CHECK (source_amount > 0),
    fee_amount          bigint          NOT NULL CHECK (fee_amount >= 0),
    target_amount       bigint          NOT NULL CHECK (target_amount > 0),
    rate                numeric(30, 12) NOT NULL,
    remainder           numeric(30, 12) NOT NULL CHECK (remainder >= 0 AND remainder < 1),
    source_point_value  numeric(30, 12) NOT NULL,
    target_point_value  numeric(30, 12) NOT NULL,
    currency            char(3)         NOT NULL,
    gross_value         numeric(38, 12) NOT NULL,  -- source_amount x source value: what the source brand owes
    fee_value           numeric(38, 12) NOT NULL,  -- fee_amount x source value: the operator's
    net_value           numeric(38, 12) NOT NULL,  -- gross - fee: what the target brand is owed
    business_date       date            NOT NULL,  -- of the reservation: its daily limits
    member_usage_counted boolean        NOT NULL,
    pair_usage_counted  boolean         NOT NULL,
    hold_id             bigint,         -- the source points held while reserved (none for convert-now)
    expires_at          timestamptz     NOT NULL,  -- reservation deadline
    window_id           bigint,         -- the settlement window it was committed in
    source_entry_id     bigint,
    target_entry_id     bigint,
    -- The signed request that committed it (convert, or commit): its key and sha256 of its signature.
    commit_kid          text,
    commit_signature_digest bytea,
    abort_reason        text,
    idempotency_key     text            NOT NULL,
    created_at          timestamptz     NOT NULL DEFAULT clock_timestamp(),
    committed_at        timestamptz,
    resolved_at         timestamptz,
    PRIMARY KEY (tenant_id, id),
    CHECK (gross_value = net_value + fee_value),
    CHECK ((status = 'committed') = (committed_at IS NOT NULL AND window_id IS NOT NULL
                                     AND source_entry_id IS NOT NULL AND target_entry_id IS NOT NULL
                                     AND commit_kid IS NOT NULL AND commit_signature_digest IS NOT NULL)),
    CHECK ((status = 'reserved') = (resolved_at IS NULL))
);
CREATE INDEX ix_exchange_conversions_target ON exchange_conversions (target_tenant_id, id);
CREATE INDEX ix_exchange_conversions_due ON exchange_conversions (expires_at) WHERE status = 'reserved';
CREATE INDEX ix_exchange_conversions_window ON exchange_conversions (window_id) WHERE window_id IS NOT NULL;

-- The exact bytes each brand signed for each action on a conversion, with its signature (non-repudiation).
CREATE TABLE exchange_signed_requests (
    tenant_id     bigint      NOT NULL,
    id            bigint      GENERATED ALWAYS AS IDENTITY,
    conversion_id bigint      NOT NULL,
    action        text        NOT NULL CHECK (action IN ('convert', 'reserve', 'commit', 'abort')),
    kid           text        NOT NULL,
    signature     text        NOT NULL,  -- the compact JWS, payload detached
    body          bytea       NOT NULL,  -- the payload: the request body exactly as received
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, conversion_id) REFERENCES exchange_conversions (tenant_id, id)
);
CREATE INDEX ix_exchange_signed_requests_conversion ON exchange_signed_requests (tenant_id, conversion_id);
CREATE TRIGGER signed_requests_append_only BEFORE UPDATE OR DELETE ON exchange_signed_requests
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- ---------------------------------------------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------------------------------------------

CREATE FUNCTION exchange__credit_shards() RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT 16 $$;

-- A new participant's position in the open window, with its credit shards.
CREATE FUNCTION exchange_open_position(p_tenant bigint, p_window bigint) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO exchange_positions (tenant_id, window_id) VALUES (p_tenant, p_window);
    INSERT INTO exchange_position_credits (tenant_id, shard)
    SELECT p_tenant, shard FROM generate_series(0, exchange__credit_shards() - 1) shard;
$$;

CREATE FUNCTION exchange__credits(p_tenant bigint) RETURNS numeric
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(credits), 0) FROM exchange_position_credits WHERE tenant_id = p_tenant
$$;

CREATE FUNCTION exchange__refuse(p_code text, p_detail jsonb DEFAULT '{}') RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'AL001', MESSAGE = p_code, DETAIL = p_detail::text;
END $$;

-- A ledger refusal as the exchange's: about the member, never naming ledger accounts.
CREATE FUNCTION exchange__refuse_ledger(p_outcome jsonb, p_member text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM exchange__refuse(p_outcome->>'code', jsonb_build_object('member', p_member)
                             || ((p_outcome->'detail') - 'account_id' - 'account_ids' - 'hold_id'));
END $$;

-- Inside an exception handler for AL001: the refusal as an outcome document.
CREATE FUNCTION exchange__refusal(p_message text, p_detail text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$ SELECT ledger__rejection(p_message, coalesce(nullif(p_detail, ''), '{}')::jsonb) $$;

-- A member event for a brand's webhooks, the shape alliance.webhooks.service.announce writes.
CREATE FUNCTION exchange__announce(p_tenant bigint, p_member text, p_type text, p_payload jsonb) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO outbox_events (tenant_id, aggregate_type, aggregate_id, event_type, payload)
    VALUES (p_tenant, 'member', p_tenant || ':' || p_member, p_type, jsonb_build_object('member', p_member) || p_payload)
$$;

CREATE FUNCTION exchange__conversion_json(c exchange_conversions) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT to_jsonb(c) - 'idempotency_key' - 'member_usage_counted' - 'pair_usage_counted'
           || jsonb_build_object('source_brand', (SELECT code FROM tenants WHERE id = c.tenant_id),
                                 'target_brand', (SELECT code FROM tenants WHERE id = c.target_tenant_id),
                                 'commit_signature_digest', encode(c.commit_signature_digest, 'hex'))
$$;

-- Tells both brands what happened to a conversion.
CREATE FUNCTION exchange__announce_conversion(c exchange_conversions, p_type text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    source_code text := (SELECT code FROM tenants WHERE id = c.tenant_id);
    target_code text := (SELECT code FROM tenants WHERE id = c.target_tenant_id);
    common      jsonb := jsonb_build_object(
        'conversion_id', c.id, 'status', c.status, 'source_brand', source_code, 'target_brand', target_code,
        'source_amount', c.source_amount, 'fee_amount', c.fee_amount, 'target_amount', c.target_amount);
BEGIN
    PERFORM exchange__announce(c.tenant_id, c.source_member, p_type, common || jsonb_build_object(
        'role', 'source', 'counterparty_identity', c.target_identity, 'entry_id', c.source_entry_id));
    PERFORM exchange__announce(c.target_tenant_id, c.target_member, p_type, common || jsonb_build_object(
        'role', 'target', 'counterparty_identity', c.source_identity, 'entry_id', c.target_entry_id));
END $$;

-- Both brands are admitted and active, and the pair is open.
CREATE FUNCTION exchange__check_pair(p_source bigint, p_target bigint) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    source_status text := (SELECT status FROM exchange_participants WHERE tenant_id = p_source);
    target_status text := (SELECT status FROM exchange_participants WHERE tenant_id = p_target);
    pair_status   text := (SELECT status FROM exchange_pairs WHERE source_tenant_id = p_source AND target_tenant_id = p_target);
BEGIN
    IF source_status IS NULL THEN
        PERFORM exchange__refuse('not_in_exchange', jsonb_build_object('tenant_id', p_source));
    ELSIF target_status IS NULL OR p_source = p_target THEN
        PERFORM exchange__refuse('brand_not_in_exchange', jsonb_build_object('tenant_id', p_target));
    ELSIF source_status <> 'active' OR target_status <> 'active' THEN
        PERFORM exchange__refuse('participant_suspended', jsonb_build_object(
            'tenant_id', CASE WHEN source_status <> 'active' THEN p_source ELSE p_target END));
    ELSIF pair_status IS DISTINCT FROM 'open' THEN
        PERFORM exchange__refuse('pair_not_open', jsonb_build_object('source_tenant_id', p_source,
                                                                      'target_tenant_id', p_target));
    END IF;
END $$;

-- What one point of a brand is worth at an instant.
CREATE FUNCTION exchange__point_value(p_tenant bigint, p_at timestamptz, OUT value numeric, OUT currency char(3))
LANGUAGE sql STABLE AS $$
    SELECT v.value, v.settlement_currency FROM ledger_currency_values v
      JOIN tenants t ON t.id = v.tenant_id AND t.currency_id = v.currency_id
     WHERE v.tenant_id = p_tenant AND v.effective_at <= p_at
     ORDER BY v.effective_at DESC LIMIT 1
$$;

-- The price of converting p_amount source points by the rate card in force at p_at. Rounding, all in the
-- member's disfavour by less than one point and never in their favour:
--   fee    = ceil(amount x fee_bps / 10000)                      source points
--   rate   = the card's, or trunc(source value / target value, 12)
--   target = floor((amount - fee) x rate)                         target points; remainder = the fraction left
-- and an explicit rate is refused if rate x target value > source value (the exchange never pays out more value
-- than it takes in).
CREATE TYPE exchange_price AS (
    rate_card_id bigint, rate_card_version integer, source_amount bigint, fee_amount bigint, target_amount bigint,
    rate numeric, remainder numeric, source_point_value numeric, target_point_value numeric, currency char(3),
    quote_ttl_seconds integer
);

CREATE FUNCTION exchange__price_amounts(
    p_card exchange_rate_cards, p_amount bigint, p_source_value numeric, p_target_value numeric, p_currency char(3)
) RETURNS exchange_price
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    price exchange_price;
    exact numeric;
BEGIN
    IF p_amount < p_card.min_amount OR p_amount > p_card.max_amount THEN
        PERFORM exchange__refuse('amount_out_of_range', jsonb_build_object(
            'amount', p_amount, 'min_amount', p_card.min_amount, 'max_amount', p_card.max_amount));
    END IF;
    IF p_target_value <= 0 THEN
        PERFORM exchange__refuse('point_value_missing', jsonb_build_object('tenant_id', p_card.target_tenant_id));
    END IF;
    price.rate := coalesce(p_card.rate, trunc(p_source_value / p_target_value, 12));
    IF price.rate * p_target_value > p_source_value THEN
        PERFORM exchange__refuse('rate_exceeds_point_values', jsonb_build_object(
            'rate', trim_scale(price.rate)::text, 'source_point_value', trim_scale(p_source_value)::text,
            'target_point_value', trim_scale(p_target_value)::text));
    END IF;
    price.rate_card_id := p_card.id;
    price.rate_card_version := p_card.version;
    price.source_amount := p_amount;
    price.fee_amount := (p_amount * p_card.fee_bps + 9999) / 10000;
    exact := (p_amount - price.fee_amount) * price.rate;
    price.target_amount := floor(exact);
    price.remainder := exact - price.target_amount;
    IF price.target_amount < 1 THEN
        PERFORM exchange__refuse('amount_too_small', jsonb_build_object('amount', p_amount, 'rate', trim_scale(price.rate)::text,
                                                                         'fee_amount', price.fee_amount));
    END IF;
    price.source_point_value := p_source_value;
    price.target_point_value := p_target_value;
    price.currency := p_currency;
    price.quote_ttl_seconds := p_card.quote_ttl_seconds;
    RETURN price;
END $$;

CREATE FUNCTION exchange__price(p_source bigint, p_target bigint, p_amount bigint, p_at timestamptz)
RETURNS exchange_price
LANGUAGE plpgsql STABLE AS $$
DECLARE
    card   exchange_rate_cards;
    source record := exchange__point_value(p_source, p_at);
    target record := exchange__point_value(p_target, p_at);
BEGIN
    SELECT * INTO card FROM exchange_rate_cards
     WHERE source_tenant_id = p_source AND target_tenant_id = p_target AND effective_at <= p_at
     ORDER BY effective_at DESC LIMIT 1;
    IF NOT FOUND THEN
        PERFORM exchange__refuse('no_rate_card', jsonb_build_object('source_tenant_id', p_source,
                                                                     'target_tenant_id', p_target));
    END IF;
    IF source.value IS NULL OR target.value IS NULL THEN
        PERFORM exchange__refuse('point_value_missing', jsonb_build_object(
            'tenant_id', CASE WHEN source.value IS NULL THEN p_source ELSE p_target END));
    END IF;
    IF source.currency <> target.currency THEN
        PERFORM exchange__refuse('settlement_currency_mismatch', jsonb_build_object(
            'source_currency', source.currency, 'target_currency', target.currency));
    END IF;
    RETURN exchange__price_amounts(card, p_amount, source.value, target.value, source.currency);
END $$;

-- A signed request's signature is used once, with a key that is not revoked. NULL: accepted; else the refusal
-- (not stored under the idempotency key: it is not this request's outcome).
CREATE FUNCTION exchange__consume_signature(p_tenant bigint, p_kid text, p_digest bytea, p_expires timestamptz)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    revoked timestamptz;
BEGIN
    SELECT revoked_at INTO revoked FROM signing_keys WHERE tenant_id = p_tenant AND kid = p_kid;
    IF NOT FOUND THEN
        RETURN ledger__rejection('signing_key_unknown', jsonb_build_object('kid', p_kid));
    ELSIF revoked IS NOT NULL THEN
        -- Revocation applies at once, whatever the API process cached of the key.
        RETURN ledger__rejection('signing_key_revoked', jsonb_build_object('kid', p_kid));
    END IF;
    INSERT INTO seen_signatures (tenant_id, digest, expires_at) VALUES (p_tenant, p_digest, p_expires)
    ON CONFLICT (tenant_id, digest) DO UPDATE SET expires_at = EXCLUDED.expires_at
        WHERE seen_signatures.expires_at <= clock_timestamp();
    IF NOT FOUND THEN
        RETURN ledger__rejection('signature_replayed', '{}');
    END IF;
    RETURN NULL;
END $$;

-- The start of every signed, idempotent operation: NULL to go ahead, or what to answer instead (the signature's
-- refusal, or the stored outcome of an earlier request with this idempotency key).
CREATE FUNCTION exchange__admit(p_tenant bigint, p_idempotency_key text, p_request_hash bytea, p_kid text,
                                p_signature_digest bytea, p_signature_expires timestamptz) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    refused jsonb := exchange__consume_signature(p_tenant, p_kid, p_signature_digest, p_signature_expires);
BEGIN
    RETURN coalesce(refused, ledger__claim(p_tenant, p_idempotency_key, p_request_hash));
END $$;

-- The clearing account shard of a brand's currency that a member account maps to.
CREATE FUNCTION exchange__clearing_account(p_tenant bigint, p_member_account bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT a.id FROM tenants t
      JOIN ledger_currencies c ON c.tenant_id = t.id AND c.id = t.currency_id
      JOIN ledger_accounts a ON a.tenant_id = t.id AND a.currency_id = c.id AND a.kind = 'clearing'
                            AND a.shard = p_member_account % c.system_shards
     WHERE t.id = p_tenant
$$;

-- ---------------------------------------------------------------------------------------------------------
-- The steps of a conversion. Lock order, the same in every operation so none deadlocks with another:
--   members (FOR SHARE) -> quote -> conversion -> hold -> daily usage -> ledger accounts ((tenant, id) order)
--   -> credit shards -> positions
-- The positions are the hottest rows (one per brand, touched by every conversion of it), so they come last: held
-- only from the end of the operation to its commit.
-- ---------------------------------------------------------------------------------------------------------

-- The price a conversion request gets: its quote's (locked, once), or the card in force now.
CREATE FUNCTION exchange__request_price(p_tenant bigint, p_target bigint, p_amount bigint, p_quote bigint)
RETURNS exchange_price
LANGUAGE plpgsql AS $$
DECLARE
    q     exchange_quotes;
    card  exchange_rate_cards;
    price exchange_price;
BEGIN
    IF p_quote IS NULL THEN
        IF p_amount IS NULL OR p_amount <= 0 OR p_amount > 1000000000000 THEN
            PERFORM exchange__refuse('invalid_amount', jsonb_build_object('amount', p_amount));
        END IF;
        RETURN exchange__price(p_tenant, p_target, p_amount, clock_timestamp());
    END IF;
    SELECT * INTO q FROM exchange_quotes WHERE tenant_id = p_tenant AND id = p_quote FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM exchange__refuse('quote_not_found', jsonb_build_object('quote_id', p_quote));
    ELSIF q.target_tenant_id <> p_target OR q.source_amount <> coalesce(p_amount, q.source_amount) THEN
        PERFORM exchange__refuse('quote_mismatch', jsonb_build_object(
            'quote_id', p_quote, 'target_tenant_id', q.target_tenant_id, 'source_amount', q.source_amount));
    ELSIF q.conversion_id IS NOT NULL THEN
        PERFORM exchange__refuse('quote_already_used', jsonb_build_object('quote_id', p_quote,
                                                                           'conversion_id', q.conversion_id));
    ELSIF q.expires_at <= clock_timestamp() THEN
        PERFORM exchange__refuse('quote_expired', jsonb_build_object('quote_id', p_quote, 'expires_at', q.expires_at));
    END IF;
    SELECT * INTO card FROM exchange_rate_cards WHERE id = q.rate_card_id;
    price := (card.id, card.version, q.source_amount, q.fee_amount, q.target_amount, q.rate, q.remainder,
              q.source_point_value, q.target_point_value, q.currency, card.quote_ttl_seconds)::exchange_price;
    RETURN price;
END $$;

-- The source member (must be active) and the receiving member at the target brand, reached through an alliance
-- identity: the friend's (p_identity) or, when none is named, the source member's own. Both held FOR SHARE, so a
-- concurrent freeze waits for this conversion.
CREATE FUNCTION exchange__parties(
    p_tenant bigint, p_member text, p_target bigint, p_identity text,
    OUT source_account bigint, OUT source_identity text, OUT target_member text, OUT target_account bigint,
    OUT target_identity text
)
LANGUAGE plpgsql AS $$
DECLARE
    v_status    text;
    v_identity  bigint;
BEGIN
    SELECT m.account_id, m.status INTO source_account, v_status FROM members m
     WHERE m.tenant_id = p_tenant AND m.external_id = p_member FOR SHARE;
    IF NOT FOUND THEN
        PERFORM exchange__refuse('member_not_found', jsonb_build_object('member', p_member));
    ELSIF v_status <> 'active' THEN
        PERFORM exchange__refuse('member_frozen', jsonb_build_object('member', p_member));
    END IF;
    SELECT i.public_id, i.id INTO source_identity, v_identity FROM alliance_links l
      JOIN alliance_identities i ON i.id = l.identity_id
     WHERE l.tenant_id = p_tenant AND l.external_id = p_member;
    IF p_identity IS NOT NULL THEN
        SELECT id INTO v_identity FROM alliance_identities WHERE public_id = p_identity;
        IF NOT FOUND THEN
            PERFORM exchange__refuse('identity_not_found', jsonb_build_object('identity', p_identity));
        END IF;
    ELSIF v_identity IS NULL THEN
        PERFORM exchange__refuse('member_not_linked', jsonb_build_object('member', p_member));
    END IF;
    SELECT m.external_id, m.account_id, m.status, i.public_id INTO target_member, target_account, v_status, target_identity
      FROM alliance_links l
      JOIN members m ON m.tenant_id = l.tenant_id AND m.external_id = l.external_id
      JOIN alliance_identities i ON i.id = l.identity_id
     WHERE l.identity_id = v_identity AND l.tenant_id = p_target
       FOR SHARE OF m;
    IF NOT FOUND THEN
        PERFORM exchange__refuse('identity_not_linked_at_brand', jsonb_build_object(
            'identity', coalesce(p_identity, source_identity), 'tenant_id', p_target));
    ELSIF v_status <> 'active' THEN
        PERFORM exchange__refuse('member_frozen', jsonb_build_object('identity', target_identity, 'side', 'target'));
    END IF;
END $$;

-- Counts the conversion against the member's daily limit and the pair's daily cap, where the card sets them.
CREATE FUNCTION exchange__count_usage(
    p_source bigint, p_target bigint, p_date date, p_member_account bigint, p_amount bigint, p_limit bigint,
    p_code text
) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    used bigint;
BEGIN
    IF p_limit IS NULL THEN
        RETURN false;
    END IF;
    IF p_amount <= p_limit THEN
        INSERT INTO exchange_daily_usage AS u (source_tenant_id, target_tenant_id, business_date, member_account_id, amount)
        VALUES (p_source, p_target, p_date, p_member_account, p_amount)
        ON CONFLICT (source_tenant_id, target_tenant_id, business_date, member_account_id)
        DO UPDATE SET amount = u.amount + EXCLUDED.amount WHERE u.amount + EXCLUDED.amount <= p_limit
        RETURNING amount INTO used;
    END IF;
    IF used IS NULL THEN
        SELECT amount INTO used FROM exchange_daily_usage
         WHERE source_tenant_id = p_source AND target_tenant_id = p_target AND business_date = p_date
           AND member_account_id = p_member_account;
        PERFORM exchange__refuse(p_code, jsonb_build_object('limit', p_limit, 'used', coalesce(used, 0),
                                                            'requested', p_amount, 'business_date', p_date));
    END IF;
    RETURN true;
END $$;

CREATE FUNCTION exchange__uncount_usage(c exchange_conversions) RETURNS void
LANGUAGE sql AS $$
    UPDATE exchange_daily_usage SET amount = amount - c.source_amount
     WHERE source_tenant_id = c.tenant_id AND target_tenant_id = c.target_tenant_id AND business_date = c.business_date
       AND ((c.member_usage_counted AND member_account_id = c.source_account_id)
            OR (c.pair_usage_counted AND member_account_id = 0))
$$;

-- Raises the source brand's net debit by `gross` (reserved, or committed at once), refused past its cap; fires the
-- alarm once a window when the position reaches the alarm share of the cap. p_window: the window the caller read
-- (unlocked) when it began; if the position is in another by now, a window closed meanwhile and the credits summed
-- were the old window's, so the whole statement is re-run (retry_transient).
CREATE FUNCTION exchange__take_capacity(
    p_tenant bigint, p_gross numeric, p_fee numeric, p_committed boolean, p_window bigint
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_credits numeric := exchange__credits(p_tenant);
    net_debit numeric;
    raised    boolean;
    v_window  bigint;
    cap       numeric;
    alarm     smallint;
    taken     boolean;
BEGIN
    UPDATE exchange_positions p
       SET reserved = p.reserved + CASE WHEN p_committed THEN 0 ELSE p_gross END,
           debits = p.debits + CASE WHEN p_committed THEN p_gross ELSE 0 END,
           fees = p.fees + CASE WHEN p_committed THEN p_fee ELSE 0 END,
           updated_at = clock_timestamp()
      FROM exchange_participants x
     WHERE p.tenant_id = p_tenant AND x.tenant_id = p_tenant
       AND p.reserved + p.debits - v_credits + p_gross <= x.net_debit_cap
    RETURNING p.reserved + p.debits - v_credits, p.alarm_raised, p.window_id, x.net_debit_cap, x.cap_alarm_percent
         INTO net_debit, raised, v_window, cap, alarm;
    taken := FOUND;
    IF NOT taken THEN
        SELECT p.reserved + p.debits - v_credits, x.net_debit_cap, p.window_id INTO net_debit, cap, v_window
          FROM exchange_positions p JOIN exchange_participants x ON x.tenant_id = p.tenant_id
         WHERE p.tenant_id = p_tenant;
    END IF;
    IF v_window IS DISTINCT FROM p_window THEN
        RAISE EXCEPTION 'the settlement window changed during a conversion of tenant %', p_tenant
            USING ERRCODE = 'serialization_failure';
    ELSIF NOT taken THEN
        -- Money goes out as exact decimal strings, never JSON numbers (clients would read floats).
        PERFORM exchange__refuse('net_debit_cap_exceeded', jsonb_build_object(
            'net_debit_cap', trim_scale(cap)::text, 'net_debit', trim_scale(net_debit)::text,
            'requested', trim_scale(p_gross)::text));
    END IF;
    IF NOT raised AND net_debit * 100 >= cap * alarm THEN
        UPDATE exchange_positions SET alarm_raised = true WHERE tenant_id = p_tenant;
        INSERT INTO outbox_events (tenant_id, aggregate_type, aggregate_id, event_type, payload)
        VALUES (p_tenant, 'exchange_position', p_tenant::text, 'net_debit_cap.alarm', jsonb_build_object(
            'net_debit_cap', trim_scale(cap)::text, 'net_debit', trim_scale(net_debit)::text, 'alarm_percent', alarm,
            'window_id', v_window));
    END IF;
END $$;

-- Posts both legs of a conversion: the source points (held, or straight from the member) into the source brand's
-- clearing account, and the target points out of the target brand's clearing account to the receiving member.
CREATE FUNCTION exchange__post_legs(c exchange_conversions, OUT source_entry bigint, OUT target_entry bigint)
LANGUAGE plpgsql AS $$
DECLARE
    source_clearing bigint := exchange__clearing_account(c.tenant_id, c.source_account_id);
    target_clearing bigint := exchange__clearing_account(c.target_tenant_id, c.target_account_id);
    v_expiry_days   integer := (SELECT t.expiry_days FROM tenants t WHERE t.id = c.target_tenant_id);
    v_metadata      jsonb := jsonb_build_object('conversion_id', c.id);
    outcome         jsonb;
BEGIN
    -- Every account both entries touch, locked up front in one global order.
    PERFORM 1 FROM ledger_accounts
     WHERE (tenant_id, id) IN ((c.tenant_id, c.source_account_id), (c.tenant_id, source_clearing),
                               (c.target_tenant_id, target_clearing), (c.target_tenant_id, c.target_account_id))
     ORDER BY tenant_id, id FOR UPDATE;
    IF c.hold_id IS NULL THEN
        outcome := ledger__apply_entry(c.tenant_id, 'conversion_out', ARRAY[c.source_account_id, source_clearing],
                                       ARRAY[-c.source_amount, c.source_amount], ARRAY[NULL, NULL]::jsonb[],
                                       v_metadata, c.idempotency_key, NULL);
    ELSE
        outcome := ledger_post_hold(c.tenant_id, NULL, NULL, c.hold_id, NULL, source_clearing, 'conversion_out', v_metadata);
    END IF;
    IF NOT (outcome->>'ok')::boolean THEN
        PERFORM exchange__refuse_ledger(outcome, c.source_member);
    END IF;
    source_entry := (outcome #>> '{entry,id}')::bigint;
    -- The target brand's expiry policy applies to the points it issues.
    outcome := ledger__apply_entry(
        c.target_tenant_id, 'conversion_in', ARRAY[target_clearing, c.target_account_id],
        ARRAY[-c.target_amount, c.target_amount],
        ARRAY[NULL, CASE WHEN v_expiry_days IS NULL THEN NULL
                         ELSE jsonb_build_array(jsonb_build_array(now() + make_interval(days => v_expiry_days),
                                                                  c.target_amount)) END]::jsonb[],
        v_metadata, c.idempotency_key, NULL);
    IF NOT (outcome->>'ok')::boolean THEN
        RAISE EXCEPTION 'conversion %: the target leg was refused: %', c.id, outcome USING ERRCODE = 'data_corrupted';
    END IF;
    target_entry := (outcome #>> '{entry,id}')::bigint;
END $$;

-- Commits a conversion: both legs. p_at: when the commit was decided (for a reservation, the instant its deadline
-- was checked, under its lock). The positions are the caller's to move, last (exchange__move_positions).
CREATE FUNCTION exchange__commit(c exchange_conversions, p_at timestamptz) RETURNS exchange_conversions
LANGUAGE plpgsql AS $$
DECLARE
    legs record;
BEGIN
    IF c.hold_id IS NOT NULL THEN
        PERFORM 1 FROM ledger_holds WHERE tenant_id = c.tenant_id AND id = c.hold_id FOR UPDATE;
    END IF;
    legs := exchange__post_legs(c);
    c.status := 'committed';
    -- Read without a lock; exchange__move_positions checks it against the positions' window under theirs.
    c.window_id := (SELECT id FROM exchange_windows WHERE status = 'open');
    c.source_entry_id := legs.source_entry;
    c.target_entry_id := legs.target_entry;
    c.committed_at := p_at;
    c.resolved_at := p_at;
    RETURN c;
END $$;

-- A committed conversion's effect on both brands' positions (p_reserved: its capacity was taken when reserved;
-- else it is taken now, refused past the cap). The last step of a commit: the positions are held until it ends.
CREATE FUNCTION exchange__move_positions(c exchange_conversions, p_reserved boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_window bigint;
BEGIN
    -- The target's credit shard, then the source's position (always in that order).
    UPDATE exchange_position_credits SET credits = credits + c.net_value
     WHERE tenant_id = c.target_tenant_id AND shard = c.id % exchange__credit_shards();
    IF p_reserved THEN
        UPDATE exchange_positions
           SET reserved = reserved - c.gross_value, debits = debits + c.gross_value, fees = fees + c.fee_value,
               updated_at = clock_timestamp()
         WHERE tenant_id = c.tenant_id
        RETURNING window_id INTO v_window;
    ELSE
        PERFORM exchange__take_capacity(c.tenant_id, c.gross_value, c.fee_value, true, c.window_id);
        v_window := c.window_id;
    END IF;
    IF v_window IS DISTINCT FROM c.window_id THEN
        -- A window closed since the conversion read it: the whole statement is re-run (retry_transient).
        RAISE EXCEPTION 'the settlement window changed during conversion %', c.id USING ERRCODE = 'serialization_failure';
    END IF;
END $$;

-- Ends a reservation without moving value: the hold is voided, the usage and the reserved capacity released.
CREATE FUNCTION exchange__release(c exchange_conversions, p_status text, p_reason text) RETURNS exchange_conversions
LANGUAGE plpgsql AS $$
DECLARE
    hold ledger_holds;
BEGIN
    SELECT * INTO hold FROM ledger_holds WHERE tenant_id = c.tenant_id AND id = c.hold_id FOR UPDATE;
    PERFORM exchange__uncount_usage(c);
    IF hold.status = 'pending' THEN  -- else the ledger's hold expiry released it already
        PERFORM ledger__release_hold(hold, 'voided');
    END IF;
    UPDATE exchange_conversions SET status = p_status, resolved_at = clock_timestamp(), abort_reason = p_reason
     WHERE tenant_id = c.tenant_id AND id = c.id RETURNING * INTO c;
    PERFORM exchange__announce_conversion(c, 'conversion.' || p_status);
    UPDATE exchange_positions SET reserved = reserved - c.gross_value, updated_at = clock_timestamp()
     WHERE tenant_id = c.tenant_id;
    RETURN c;
END $$;

-- The reserved conversion a commit or an abort acts on, locked; refused if it is not reserved, and expired (then
-- refused) if it is past its deadline, even if the expiry job has not reached it yet.
CREATE FUNCTION exchange__reserved(p_tenant bigint, p_conversion bigint, OUT c exchange_conversions,
                                   OUT expired boolean, OUT checked_at timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT * INTO c FROM exchange_conversions WHERE tenant_id = p_tenant AND id = p_conversion FOR UPDATE;
    expired := false;
    checked_at := clock_timestamp();
    IF NOT FOUND THEN
        PERFORM exchange__refuse('conversion_not_found', jsonb_build_object('conversion_id', p_conversion));
    ELSIF c.status <> 'reserved' THEN
        PERFORM exchange__refuse('conversion_not_reserved', jsonb_build_object('conversion_id', p_conversion,
                                                                                'conversion_status', c.status));
    ELSIF c.expires_at <= checked_at THEN
        c := exchange__release(c, 'expired', NULL);
        expired := true;
    END IF;
END $$;

-- ---------------------------------------------------------------------------------------------------------
-- Operations: one statement each for the client, like the ledger's; each returns an outcome document and,
-- past its signature, stores it under the idempotency key (refusals too).
-- ---------------------------------------------------------------------------------------------------------

CREATE FUNCTION exchange_quote(p_tenant bigint, p_target bigint, p_amount bigint) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    price exchange_price;
    q     exchange_quotes;
    msg   text;
    det   text;
BEGIN
    PERFORM exchange__check_pair(p_tenant, p_target);
    price := exchange__request_price(p_tenant, p_target, p_amount, NULL);
    INSERT INTO exchange_quotes (tenant_id, target_tenant_id, rate_card_id, source_amount, fee_amount, target_amount,
                                 rate, remainder, source_point_value, target_point_value, currency, expires_at)
    VALUES (p_tenant, p_target, price.rate_card_id, price.source_amount, price.fee_amount, price.target_amount,
            price.rate, price.remainder, price.source_point_value, price.target_point_value, price.currency,
            clock_timestamp() + make_interval(secs => price.quote_ttl_seconds))
    RETURNING * INTO q;
    RETURN jsonb_build_object('ok', true, 'quote', to_jsonb(q) || jsonb_build_object(
        'rate_card_version', price.rate_card_version,
        'gross_value', q.source_amount * q.source_point_value, 'fee_value', q.fee_amount * q.source_point_value));
EXCEPTION WHEN SQLSTATE 'AL001' THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
    RETURN exchange__refusal(msg, det);
END $$;

-- Reserves a conversion (the source points held until p_deadline) or, with p_commit, converts at once.
CREATE FUNCTION exchange_convert(
    p_tenant bigint, p_idempotency_key text, p_request_hash bytea,
    p_kid text, p_signature_digest bytea, p_signature_expires timestamptz, p_signature text, p_body bytea,
    p_member text, p_target bigint, p_identity text, p_amount bigint, p_quote bigint,
    p_commit boolean, p_deadline timestamptz, p_business_date date
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    outcome jsonb := exchange__admit(p_tenant, p_idempotency_key, p_request_hash, p_kid, p_signature_digest,
                                     p_signature_expires);
    price   exchange_price;
    parties record;
    c       exchange_conversions;
    placed  jsonb;
    msg     text;
    det     text;
BEGIN
    IF outcome IS NOT NULL THEN
        RETURN outcome;
    END IF;
    BEGIN
        PERFORM exchange__check_pair(p_tenant, p_target);
        parties := exchange__parties(p_tenant, p_member, p_target, p_identity);
        price := exchange__request_price(p_tenant, p_target, p_amount, p_quote);
        c.tenant_id := p_tenant;
        c.id := nextval('exchange_conversions_id_seq');
        c.target_tenant_id := p_target;
        c.status := 'reserved';
        c.source_member := p_member;
        c.source_account_id := parties.source_account;
        c.source_identity := parties.source_identity;
        c.target_member := parties.target_member;
        c.target_account_id := parties.target_account;
        c.target_identity := parties.target_identity;
        c.quote_id := p_quote;
        c.rate_card_id := price.rate_card_id;
        c.source_amount := price.source_amount;
        c.fee_amount := price.fee_amount;
        c.target_amount := price.target_amount;
        c.rate := price.rate;
        c.remainder := price.remainder;
        c.source_point_value := price.source_point_value;
        c.target_point_value := price.target_point_value;
        c.currency := price.currency;
        c.gross_value := price.source_amount * price.source_point_value;
        c.fee_value := price.fee_amount * price.source_point_value;
        c.net_value := c.gross_value - c.fee_value;
        c.business_date := p_business_date;
        c.expires_at := p_deadline;
        c.idempotency_key := p_idempotency_key;
        c.created_at := clock_timestamp();
        c.member_usage_counted := exchange__count_usage(
            p_tenant, p_target, p_business_date, c.source_account_id, c.source_amount,
            (SELECT member_daily_limit FROM exchange_rate_cards WHERE id = c.rate_card_id), 'member_daily_limit_exceeded');
        c.pair_usage_counted := exchange__count_usage(
            p_tenant, p_target, p_business_date, 0, c.source_amount,
            (SELECT pair_daily_cap FROM exchange_rate_cards WHERE id = c.rate_card_id), 'pair_daily_cap_exceeded');
        IF p_commit THEN
            c.commit_kid := p_kid;
            c.commit_signature_digest := p_signature_digest;
            c := exchange__commit(c, clock_timestamp());
        ELSE
            -- The hold outlives the reservation by a minute, so the exchange's expiry (one event for both brands)
            -- normally ends it before the ledger's own hold expiry does.
            placed := ledger_hold(p_tenant, NULL, NULL, c.source_account_id, c.source_amount,
                                  p_deadline + interval '1 minute', jsonb_build_object('conversion_id', c.id));
            IF NOT (placed->>'ok')::boolean THEN
                PERFORM exchange__refuse_ledger(placed, p_member);
            END IF;
            c.hold_id := (placed #>> '{hold,id}')::bigint;
        END IF;
        INSERT INTO exchange_conversions SELECT (c).*;
        INSERT INTO exchange_signed_requests (tenant_id, conversion_id, action, kid, signature, body)
        VALUES (p_tenant, c.id, CASE WHEN p_commit THEN 'convert' ELSE 'reserve' END, p_kid, p_signature, p_body);
        IF p_quote IS NOT NULL THEN
            UPDATE exchange_quotes SET conversion_id = c.id WHERE tenant_id = p_tenant AND id = p_quote;
        END IF;
        PERFORM exchange__announce_conversion(c, 'conversion.' || c.status);
        -- Last, the positions (the net debit cap is checked here): see the lock order.
        IF p_commit THEN
            PERFORM exchange__move_positions(c, false);
        ELSE
            PERFORM exchange__take_capacity(p_tenant, c.gross_value, c.fee_value, false,
                                            (SELECT id FROM exchange_windows WHERE status = 'open'));
        END IF;
        outcome := jsonb_build_object('ok', true, 'conversion', exchange__conversion_json(c));
    EXCEPTION WHEN SQLSTATE 'AL001' THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
        outcome := exchange__refusal(msg, det);
    END;
    RETURN ledger__remember(p_tenant, p_idempotency_key, p_request_hash, outcome);
END $$;

-- Commits (p_abort false) or aborts a reserved conversion of the calling (source) brand.
CREATE FUNCTION exchange_resolve(
    p_tenant bigint, p_idempotency_key text, p_request_hash bytea,
    p_kid text, p_signature_digest bytea, p_signature_expires timestamptz, p_signature text, p_body bytea,
    p_conversion bigint, p_abort boolean, p_reason text
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    outcome jsonb := exchange__admit(p_tenant, p_idempotency_key, p_request_hash, p_kid, p_signature_digest,
                                     p_signature_expires);
    pending record;
    c       exchange_conversions;
    v_status text;
    msg     text;
    det     text;
BEGIN
    IF outcome IS NOT NULL THEN
        RETURN outcome;
    END IF;
    BEGIN
        -- Members first (the global lock order), then the conversion itself.
        SELECT source_member, target_member, target_tenant_id INTO pending FROM exchange_conversions
         WHERE tenant_id = p_tenant AND id = p_conversion;
        IF FOUND AND NOT p_abort THEN
            FOR v_status IN
                SELECT m.status FROM members m
                 WHERE (m.tenant_id, m.external_id) IN ((p_tenant, pending.source_member),
                                                        (pending.target_tenant_id, pending.target_member))
                 ORDER BY m.tenant_id FOR SHARE
            LOOP
                IF v_status <> 'active' THEN
                    PERFORM exchange__refuse('member_frozen', jsonb_build_object('conversion_id', p_conversion));
                END IF;
            END LOOP;
        END IF;
        pending := exchange__reserved(p_tenant, p_conversion);
        c := pending.c;
        IF pending.expired THEN
            outcome := ledger__rejection('conversion_expired', jsonb_build_object(
                'conversion_id', c.id, 'expires_at', c.expires_at));
        ELSE
            IF p_abort THEN
                c := exchange__release(c, 'aborted', p_reason);
            ELSE
                c.commit_kid := p_kid;
                c.commit_signature_digest := p_signature_digest;
                c := exchange__commit(c, pending.checked_at);
                UPDATE exchange_conversions
                   SET status = c.status, window_id = c.window_id, source_entry_id = c.source_entry_id,
                       target_entry_id = c.target_entry_id, committed_at = c.committed_at, resolved_at = c.resolved_at,
                       commit_kid = c.commit_kid, commit_signature_digest = c.commit_signature_digest
                 WHERE tenant_id = c.tenant_id AND id = c.id;
                PERFORM exchange__announce_conversion(c, 'conversion.committed');
                PERFORM exchange__move_positions(c, true);
            END IF;
            outcome := jsonb_build_object('ok', true, 'conversion', exchange__conversion_json(c));
        END IF;
        INSERT INTO exchange_signed_requests (tenant_id, conversion_id, action, kid, signature, body)
        VALUES (p_tenant, c.id, CASE WHEN p_abort THEN 'abort' ELSE 'commit' END, p_kid, p_signature, p_body);
    EXCEPTION WHEN SQLSTATE 'AL001' THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
        outcome := exchange__refusal(msg, det);
    END;
    RETURN ledger__remember(p_tenant, p_idempotency_key, p_request_hash, outcome);
END $$;

-- The expiry job: ends reservations past their deadline. Conversions another transaction holds are skipped (the
-- next run gets them). Returns how many were expired: call again until 0.
CREATE FUNCTION exchange_expire_conversions(p_now timestamptz, p_limit int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    c    exchange_conversions;
    done int := 0;
BEGIN
    FOR c IN
        SELECT * FROM exchange_conversions WHERE status = 'reserved' AND expires_at <= p_now
         ORDER BY expires_at LIMIT p_limit FOR UPDATE SKIP LOCKED
    LOOP
        PERFORM exchange__release(c, 'expired', NULL);
        done := done + 1;
    END LOOP;
    RETURN done;
END $$;
