-- The double-entry ledger core and the transactional outbox.
--
-- Invariants the database itself enforces:
--   * every journal entry has >= 2 postings summing to zero per currency  (deferred constraint trigger)
--   * postings and entries are append-only                                 (triggers refuse UPDATE/DELETE/TRUNCATE)
--   * a non-negative account never has balance < held, nor held < 0        (CHECK)
--   * a posting's currency is its account's currency                       (composite FK)
--   * an entry is reversed at most once                                    (UNIQUE)
--   * one posting per account version                                      (UNIQUE: no lost update)
-- Invariants the operations below maintain, and the property tests check:
--   * an account's balance is the sum of its postings; each posting's balance_after is the running sum
--   * a member account's balance is the sum of its open lots

CREATE TABLE ledger_currencies (
    tenant_id     bigint      NOT NULL,
    id            bigint      GENERATED ALWAYS AS IDENTITY,
    code          text        NOT NULL CHECK (code ~ '^[A-Z][A-Z0-9_]{1,15}$'),
    system_shards smallint    NOT NULL CHECK (system_shards BETWEEN 1 AND 64),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, code)
);

-- What one point is worth in the settlement currency, from an instant on.
CREATE TABLE ledger_currency_values (
    tenant_id           bigint         NOT NULL,
    currency_id         bigint         NOT NULL,
    effective_at        timestamptz    NOT NULL,
    value               numeric(30, 12) NOT NULL CHECK (value >= 0),
    settlement_currency char(3)        NOT NULL,
    PRIMARY KEY (tenant_id, currency_id, effective_at),
    FOREIGN KEY (tenant_id, currency_id) REFERENCES ledger_currencies (tenant_id, id)
);

CREATE TABLE ledger_accounts (
    tenant_id    bigint      NOT NULL,
    id           bigint      GENERATED ALWAYS AS IDENTITY,
    currency_id  bigint      NOT NULL,
    kind         text        NOT NULL
                 CHECK (kind IN ('member', 'issuance', 'redemption', 'expiry', 'breakage', 'clearing', 'fees')),
    -- System accounts are hot (every credit touches issuance): each is split into `system_shards` rows.
    shard        smallint    NOT NULL DEFAULT 0,
    non_negative boolean     NOT NULL,
    balance      bigint      NOT NULL DEFAULT 0,
    held         bigint      NOT NULL DEFAULT 0,
    version      bigint      NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, id, currency_id),
    FOREIGN KEY (tenant_id, currency_id) REFERENCES ledger_currencies (tenant_id, id),
    CONSTRAINT held_not_negative CHECK (held >= 0),
    CONSTRAINT no_overdraft CHECK (NOT non_negative OR balance >= held),
    CONSTRAINT members_never_negative CHECK (kind <> 'member' OR non_negative)
);
CREATE UNIQUE INDEX ux_ledger_accounts_system ON ledger_accounts (tenant_id, currency_id, kind, shard)
    WHERE kind <> 'member';

CREATE TABLE ledger_entries (
    tenant_id         bigint      NOT NULL,
    id                bigint      GENERATED ALWAYS AS IDENTITY,
    kind              text        NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
    reverses_entry_id bigint,
    idempotency_key   text,
    metadata          jsonb       NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, reverses_entry_id) REFERENCES ledger_entries (tenant_id, id),
    UNIQUE (tenant_id, reverses_entry_id)
);

CREATE TABLE ledger_postings (
    tenant_id     bigint      NOT NULL,
    id            bigint      GENERATED ALWAYS AS IDENTITY,
    entry_id      bigint      NOT NULL,
    account_id    bigint      NOT NULL,
    currency_id   bigint      NOT NULL,
    amount        bigint      NOT NULL CHECK (amount <> 0),
    balance_after bigint      NOT NULL,
    version_after bigint      NOT NULL,
    -- Taken under the account's row lock, so it only grows with version_after on one account.
    posted_at     timestamptz NOT NULL,
    -- Debits of member accounts: the lots consumed, [[expires_at|null, amount], ...] (reversals restore them).
    lots          jsonb,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, entry_id) REFERENCES ledger_entries (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id, currency_id) REFERENCES ledger_accounts (tenant_id, id, currency_id),
    UNIQUE (tenant_id, account_id, version_after)
);
CREATE INDEX ix_ledger_postings_entry ON ledger_postings (tenant_id, entry_id);
CREATE INDEX ix_ledger_postings_account_time ON ledger_postings (tenant_id, account_id, posted_at)
    INCLUDE (balance_after, version_after);

-- Earned points by expiry: one open bucket per (account, expiry); NULL expiry = never expires.
CREATE TABLE ledger_lots (
    tenant_id  bigint      NOT NULL,
    id         bigint      GENERATED ALWAYS AS IDENTITY,
    account_id bigint      NOT NULL,
    expires_at timestamptz,
    remaining  bigint      NOT NULL CHECK (remaining >= 0),
    credited   bigint      NOT NULL CHECK (credited >= remaining),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES ledger_accounts (tenant_id, id)
);
CREATE UNIQUE INDEX ux_ledger_lots_open ON ledger_lots (tenant_id, account_id, expires_at) NULLS NOT DISTINCT
    WHERE remaining > 0;
CREATE INDEX ix_ledger_lots_due ON ledger_lots (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;

CREATE TABLE ledger_holds (
    tenant_id     bigint      NOT NULL,
    id            bigint      GENERATED ALWAYS AS IDENTITY,
    account_id    bigint      NOT NULL,
    amount        bigint      NOT NULL CHECK (amount > 0),
    status        text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'posted', 'voided', 'expired')),
    expires_at    timestamptz NOT NULL,
    posted_amount bigint      CHECK (posted_amount > 0 AND posted_amount <= amount),
    entry_id      bigint,
    metadata      jsonb       NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES ledger_accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, entry_id) REFERENCES ledger_entries (tenant_id, id),
    CHECK ((status = 'pending') = (resolved_at IS NULL)),
    CHECK ((status = 'posted') = (entry_id IS NOT NULL))
);
CREATE INDEX ix_ledger_holds_due ON ledger_holds (expires_at) WHERE status = 'pending';
CREATE INDEX ix_ledger_holds_account ON ledger_holds (tenant_id, account_id) WHERE status = 'pending';

-- The outcome of every value-moving request, rejections too, stored with the postings.
CREATE TABLE ledger_idempotency (
    tenant_id    bigint      NOT NULL,
    key          text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash bytea       NOT NULL,
    outcome      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

-- Events that must not be lost, written in the same transaction as the change they announce.
CREATE TABLE outbox_events (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       bigint,
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    event_type      text        NOT NULL,
    payload         jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text
);
CREATE INDEX ix_outbox_events_pending ON outbox_events (aggregate_type, aggregate_id, id) WHERE published_at IS NULL;
CREATE INDEX ix_outbox_events_due ON outbox_events (next_attempt_at, id) WHERE published_at IS NULL;

-- ---------------------------------------------------------------------------------------------------------
-- Guards
-- ---------------------------------------------------------------------------------------------------------

CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON ledger_postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Checked at commit, so an entry's postings may be inserted one by one within its transaction.
CREATE FUNCTION ledger_check_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n_postings int;
    unbalanced bigint;
BEGIN
    SELECT count(*) INTO n_postings FROM ledger_postings WHERE tenant_id = NEW.tenant_id AND entry_id = NEW.entry_id;
    SELECT currency_id INTO unbalanced FROM ledger_postings
     WHERE tenant_id = NEW.tenant_id AND entry_id = NEW.entry_id
     GROUP BY currency_id HAVING sum(amount) <> 0 LIMIT 1;
    IF n_postings < 2 OR unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'journal entry % is unbalanced (% postings, currency %)', NEW.entry_id, n_postings, unbalanced
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER postings_balanced AFTER INSERT ON ledger_postings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_balanced();

-- ---------------------------------------------------------------------------------------------------------
-- Operations. Each public ledger_* function is one statement for the client: one round trip, atomic on its
-- own or inside the caller's transaction. Each returns an outcome document:
--   {"ok": true, ...}  or  {"ok": false, "code": "<named result>", "detail": {...}}
-- and, given an idempotency key, stores it; the same key and request get the stored outcome again
-- (with "replayed": true), the same key with another request gets code idempotency_key_reused.
-- ---------------------------------------------------------------------------------------------------------

CREATE FUNCTION ledger__rejection(p_code text, p_detail jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$ SELECT jsonb_build_object('ok', false, 'code', p_code, 'detail', p_detail) $$;

-- NULL: go ahead (the key is ours until commit). Otherwise the outcome to answer with.
CREATE FUNCTION ledger__claim(p_tenant bigint, p_key text, p_hash bytea) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    stored ledger_idempotency;
BEGIN
    IF p_key IS NULL THEN
        RETURN NULL;
    END IF;
    -- Serializes requests that share a key: the second waits for the first to commit, then sees its outcome.
    PERFORM pg_advisory_xact_lock(hashtextextended(p_key, p_tenant));
    SELECT * INTO stored FROM ledger_idempotency WHERE tenant_id = p_tenant AND key = p_key;
    IF NOT FOUND THEN
        RETURN NULL;
    ELSIF stored.request_hash <> p_hash THEN
        RETURN ledger__rejection('idempotency_key_reused', jsonb_build_object('key', p_key));
    END IF;
    RETURN stored.outcome || '{"replayed": true}';
END $$;

CREATE FUNCTION ledger__remember(p_tenant bigint, p_key text, p_hash bytea, p_outcome jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    IF p_key IS NOT NULL THEN
        INSERT INTO ledger_idempotency (tenant_id, key, request_hash, outcome) VALUES (p_tenant, p_key, p_hash, p_outcome);
    END IF;
    RETURN p_outcome;
END $$;

-- Locks the accounts (ascending id, so concurrent entries never deadlock) and returns them in that order.
CREATE FUNCTION ledger__lock_accounts(p_tenant bigint, p_ids bigint[]) RETURNS SETOF ledger_accounts
LANGUAGE sql AS $$
    SELECT * FROM ledger_accounts WHERE tenant_id = p_tenant AND id = ANY (p_ids) ORDER BY id FOR UPDATE
$$;

-- Consumes p_amount from an account's open lots, soonest expiry first; returns the slices taken.
CREATE FUNCTION ledger__consume_lots(p_tenant bigint, p_account bigint, p_amount bigint) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    need   bigint := p_amount;
    take   bigint;
    lot    record;
    slices jsonb := '[]';
BEGIN
    FOR lot IN
        SELECT id, expires_at, remaining FROM ledger_lots
         WHERE tenant_id = p_tenant AND account_id = p_account AND remaining > 0
         ORDER BY expires_at NULLS LAST, id
    LOOP
        take := least(need, lot.remaining);
        UPDATE ledger_lots SET remaining = remaining - take WHERE tenant_id = p_tenant AND id = lot.id;
        slices := slices || jsonb_build_array(jsonb_build_array(lot.expires_at, take));
        need := need - take;
        EXIT WHEN need = 0;
    END LOOP;
    IF need > 0 THEN
        RAISE EXCEPTION 'account %: open lots do not cover a debit of %', p_account, p_amount
            USING ERRCODE = 'data_corrupted';
    END IF;
    RETURN slices;
END $$;

CREATE FUNCTION ledger__add_lot(p_tenant bigint, p_account bigint, p_expires timestamptz, p_amount bigint) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO ledger_lots (tenant_id, account_id, expires_at, remaining, credited)
    VALUES (p_tenant, p_account, p_expires, p_amount, p_amount)
    ON CONFLICT (tenant_id, account_id, expires_at) WHERE remaining > 0
    DO UPDATE SET remaining = ledger_lots.remaining + EXCLUDED.remaining,
                  credited  = ledger_lots.credited + EXCLUDED.credited
$$;

-- Writes one balanced entry. Postings are parallel arrays; p_lots[i] gives a member credit its lots as
-- [[expires_at|null, amount], ...]; NULL means: inherit the lots this entry's member debits consumed (so
-- gifted points keep their expiry), and whatever is not covered that way never expires.
-- Checks everything before writing anything, so a rejection leaves no trace but its stored outcome.
CREATE FUNCTION ledger__apply_entry(
    p_tenant bigint, p_kind text, p_accounts bigint[], p_amounts bigint[], p_lots jsonb[],
    p_metadata jsonb, p_idempotency_key text, p_reverses bigint
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    n          int := coalesce(array_length(p_accounts, 1), 0);
    acc        ledger_accounts;
    accs       ledger_accounts[];
    entry      ledger_entries;
    i          int;
    k          int;
    delta      bigint;
    new_bal    bigint;
    new_ver    bigint;
    posted     timestamptz;
    slices     jsonb[] := array_fill(NULL::jsonb, ARRAY[greatest(n, 1)]);
    pool       jsonb := '[]';
    pool_idx   int := 0;
    need       bigint;
    take       bigint;
    slice      jsonb;
    result     jsonb := '[]';
    bad_ccy    bigint;
    ccy        bigint;
BEGIN
    IF n < 2 OR n <> coalesce(array_length(p_amounts, 1), 0) OR n <> coalesce(array_length(p_lots, 1), 0) THEN
        RETURN ledger__rejection('invalid_entry', jsonb_build_object('reason', 'an entry needs >= 2 postings'));
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(p_amounts) a WHERE a IS NULL OR a = 0) THEN
        RETURN ledger__rejection('invalid_entry', jsonb_build_object('reason', 'posting amounts must be non-zero'));
    END IF;

    SELECT array_agg(a) INTO accs FROM ledger__lock_accounts(p_tenant, p_accounts) a;
    IF coalesce(array_length(accs, 1), 0) <> (SELECT count(DISTINCT x) FROM unnest(p_accounts) x) THEN
        RETURN ledger__rejection('account_not_found', jsonb_build_object(
            'account_ids', (SELECT jsonb_agg(x) FROM unnest(p_accounts) x
                             WHERE x IS NULL OR NOT x = ANY (SELECT (a).id FROM unnest(accs) a))));
    END IF;

    SELECT t.ccy INTO bad_ccy
      FROM unnest(p_accounts, p_amounts) AS p(account_id, amount)
      JOIN LATERAL (SELECT (a).currency_id AS ccy FROM unnest(accs) a WHERE (a).id = p.account_id) t ON true
     GROUP BY t.ccy HAVING sum(p.amount) <> 0 LIMIT 1;
    IF bad_ccy IS NOT NULL THEN
        RETURN ledger__rejection('unbalanced_entry', jsonb_build_object('currency_id', bad_ccy));
    END IF;

    -- Every account whose balance is checked must afford its net debit in this entry.
    FOREACH acc IN ARRAY accs LOOP
        SELECT coalesce(sum(p.amount), 0) INTO delta
          FROM unnest(p_accounts, p_amounts) AS p(account_id, amount) WHERE p.account_id = acc.id;
        IF acc.non_negative AND acc.balance - acc.held + delta < 0 THEN
            RETURN ledger__rejection('insufficient_points', jsonb_build_object(
                'account_id', acc.id, 'available', acc.balance - acc.held, 'requested', -delta));
        END IF;
    END LOOP;

    INSERT INTO ledger_entries (tenant_id, kind, reverses_entry_id, idempotency_key, metadata)
    VALUES (p_tenant, p_kind, p_reverses, p_idempotency_key, coalesce(p_metadata, '{}'))
    RETURNING * INTO entry;

    -- Member debits first: what they consume is the pool member credits inherit from.
    FOR i IN 1..n LOOP
        IF p_amounts[i] < 0 THEN
            SELECT * INTO acc FROM unnest(accs) a WHERE a.id = p_accounts[i];
            IF acc.kind = 'member' THEN
                slices[i] := ledger__consume_lots(p_tenant, acc.id, -p_amounts[i]);
                pool := pool || slices[i];
            END IF;
        END IF;
    END LOOP;
    FOR i IN 1..n LOOP
        IF p_amounts[i] > 0 THEN
            SELECT * INTO acc FROM unnest(accs) a WHERE a.id = p_accounts[i];
            IF acc.kind = 'member' THEN
                IF p_lots[i] IS NOT NULL THEN
                    FOR slice IN SELECT * FROM jsonb_array_elements(p_lots[i]) LOOP
                        PERFORM ledger__add_lot(p_tenant, acc.id, (slice->>0)::timestamptz, (slice->>1)::bigint);
                    END LOOP;
                ELSE
                    need := p_amounts[i];
                    WHILE need > 0 AND pool_idx < jsonb_array_length(pool) LOOP
                        slice := pool -> pool_idx;
                        take := least(need, (slice->>1)::bigint);
                        PERFORM ledger__add_lot(p_tenant, acc.id, (slice->>0)::timestamptz, take);
                        need := need - take;
                        IF take = (slice->>1)::bigint THEN
                            pool_idx := pool_idx + 1;
                        ELSE
                            pool := jsonb_set(pool, ARRAY[pool_idx::text, '1'], to_jsonb((slice->>1)::bigint - take));
                        END IF;
                    END LOOP;
                    IF need > 0 THEN
                        PERFORM ledger__add_lot(p_tenant, acc.id, NULL, need);
                    END IF;
                END IF;
            END IF;
        END IF;
    END LOOP;

    FOR i IN 1..n LOOP
        UPDATE ledger_accounts SET balance = balance + p_amounts[i], version = version + 1
         WHERE tenant_id = p_tenant AND id = p_accounts[i]
        RETURNING balance, version, currency_id, clock_timestamp() INTO new_bal, new_ver, ccy, posted;
        INSERT INTO ledger_postings
               (tenant_id, entry_id, account_id, currency_id, amount, balance_after, version_after, posted_at, lots)
        VALUES (p_tenant, entry.id, p_accounts[i], ccy, p_amounts[i], new_bal, new_ver, posted, slices[i]);
        result := result || jsonb_build_object(
            'account_id', p_accounts[i], 'amount', p_amounts[i],
            'balance_after', new_bal, 'version_after', new_ver, 'posted_at', posted);
    END LOOP;

    RETURN jsonb_build_object('ok', true, 'entry', jsonb_build_object(
        'id', entry.id, 'kind', entry.kind, 'reverses_entry_id', entry.reverses_entry_id,
        'metadata', entry.metadata, 'created_at', entry.created_at, 'postings', result));
END $$;

CREATE FUNCTION ledger_post_entry(
    p_tenant bigint, p_idempotency_key text, p_request_hash bytea, p_kind text,
    p_accounts bigint[], p_amounts bigint[], p_lots jsonb[], p_metadata jsonb
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    outcome jsonb := ledger__claim(p_tenant, p_idempotency_key, p_request_hash);
BEGIN
    IF outcome IS NOT NULL THEN
        RETURN outcome;
    END IF;
    outcome := ledger__apply_entry(p_tenant, p_kind, p_accounts, p_amounts, p_lots, p_metadata, p_idempotency_key, NULL);
    RETURN ledger__remember(p_tenant, p_idempotency_key, p_request_hash, outcome);
END $$;

CREATE FUNCTION ledger__hold_json(h ledger_holds) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('id', h.id, 'account_id', h.account_id, 'amount', h.amount, 'status', h.status,
        'expires_at', h.expires_at, 'posted_amount', h.posted_amount, 'entry_id', h.entry_id,
        'metadata', h.metadata, 'created_at', h.created_at, 'resolved_at', h.resolved_at)
$$;

-- Reserves points on an account: they stay in the balance but are no longer available.
CREATE FUNCTION ledger_hold(
    p_tenant bigint, p_idempotency_key text, p_request_hash bytea,
    p_account bigint, p_amount bigint, p_expires_at timestamptz, p_metadata jsonb
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    outcome jsonb := ledger__claim(p_tenant, p_idempotency_key, p_request_hash);
    acc     ledger_accounts;
    hold    ledger_holds;
BEGIN
    IF outcome IS NOT NULL THEN
        RETURN outcome;
    END IF;
    SELECT * INTO acc FROM ledger__lock_accounts(p_tenant, ARRAY[p_account]);
    IF NOT FOUND THEN
        outcome := ledger__rejection('account_not_found', jsonb_build_object('account_ids', jsonb_build_array(p_account)));
    ELSIF p_amount IS NULL OR p_amount <= 0 THEN
        outcome := ledger__rejection('invalid_amount', jsonb_build_object('amount', p_amount));
    ELSIF p_expires_at IS NULL OR p_expires_at <= now() THEN
        outcome := ledger__rejection('invalid_expiry', jsonb_build_object('expires_at', p_expires_at));
    ELSIF NOT acc.non_negative THEN
        outcome := ledger__rejection('account_not_holdable', jsonb_build_object('account_id', acc.id));
    ELSIF acc.balance - acc.held < p_amount THEN
        outcome := ledger__rejection('insufficient_points', jsonb_build_object(
            'account_id', acc.id, 'available', acc.balance - acc.held, 'requested', p_amount));
    ELSE
        UPDATE ledger_accounts SET held = held + p_amount WHERE tenant_id = p_tenant AND id = p_account;
        INSERT INTO ledger_holds (tenant_id, account_id, amount, expires_at, metadata)
        VALUES (p_tenant, p_account, p_amount, p_expires_at, coalesce(p_metadata, '{}'))
        RETURNING * INTO hold;
        outcome := jsonb_build_object('ok', true, 'hold', ledger__hold_json(hold));
    END IF;
    RETURN ledger__remember(p_tenant, p_idempotency_key, p_request_hash, outcome);
END $$;

-- Ends a pending hold without moving value: its amount becomes available again.
CREATE FUNCTION ledger__release_hold(h ledger_holds, p_status text) RETURNS ledger_holds
LANGUAGE plpgsql AS $$
DECLARE
    released ledger_holds;
BEGIN
    PERFORM 1 FROM ledger__lock_accounts(h.tenant_id, ARRAY[h.account_id]);
    UPDATE ledger_accounts SET held = held - h.amount WHERE tenant_id = h.tenant_id AND id = h.account_id;
    UPDATE ledger_holds SET status = p_status, resolved_at = now()
     WHERE tenant_id = h.tenant_id AND id = h.id RETURNING * INTO released;
    IF p_status = 'expired' THEN
        INSERT INTO outbox_events (tenant_id, aggregate_type, aggregate_id, event_type, payload)
        VALUES (h.tenant_id, 'ledger_account', h.account_id::text, 'hold.expired', ledger__hold_json(released));
    END IF;
    RETURN released;
END $$;

-- The pending hold to act on, locked; or the rejection that says why not.
CREATE FUNCTION ledger__pending_hold(p_tenant bigint, p_hold bigint, OUT hold ledger_holds, OUT rejection jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT * INTO hold FROM ledger_holds WHERE tenant_id = p_tenant AND id = p_hold FOR UPDATE;
    IF NOT FOUND THEN
        rejection := ledger__rejection('hold_not_found', jsonb_build_object('hold_id', p_hold));
    ELSIF hold.status <> 'pending' THEN
        rejection := ledger__rejection('hold_not_pending', jsonb_build_object('hold_id', p_hold, 'hold_status', hold.status));
    ELSIF hold.expires_at <= now() THEN
        -- Past its deadline the hold is dead even if the expiry job has not reached it yet.
        hold := ledger__release_hold(hold, 'expired');
        rejection := ledger__rejection('hold_expired', jsonb_build_object('hold_id', p_hold, 'expires_at', hold.expires_at));
    END IF;
END $$;

-- Captures a pending hold, whole or in part, into p_to_account; the rest is released.
CREATE FUNCTION ledger_post_hold(
    p_tenant bigint, p_idempotency_key text, p_request_hash bytea,
    p_hold bigint, p_amount bigint, p_to_account bigint, p_kind text, p_metadata jsonb
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    outcome jsonb := ledger__claim(p_tenant, p_idempotency_key, p_request_hash);
    pending record;
    hold    ledger_holds;
    capture bigint;
BEGIN
    IF outcome IS NOT NULL THEN
        RETURN outcome;
    END IF;
    SELECT * INTO pending FROM ledger__pending_hold(p_tenant, p_hold);
    hold := pending.hold;
    outcome := pending.rejection;
    capture := coalesce(p_amount, hold.amount);
    IF outcome IS NULL AND (capture <= 0 OR capture > hold.amount) THEN
        outcome := ledger__rejection('amount_exceeds_hold', jsonb_build_object(
            'hold_id', p_hold, 'held', hold.amount, 'requested', capture));
    END IF;
    IF outcome IS NULL THEN
        PERFORM 1 FROM ledger__lock_accounts(p_tenant, ARRAY[hold.account_id, p_to_account]);
        UPDATE ledger_accounts SET held = held - hold.amount WHERE tenant_id = p_tenant AND id = hold.account_id;
        outcome := ledger__apply_entry(p_tenant, p_kind, ARRAY[hold.account_id, p_to_account], ARRAY[-capture, capture],
                                       ARRAY[NULL, NULL]::jsonb[],
                                       coalesce(p_metadata, '{}') || jsonb_build_object('hold_id', p_hold),
                                       p_idempotency_key, NULL);
        IF (outcome->>'ok')::boolean THEN
            UPDATE ledger_holds SET status = 'posted', posted_amount = capture, resolved_at = now(),
                   entry_id = (outcome #>> '{entry,id}')::bigint
             WHERE tenant_id = p_tenant AND id = p_hold RETURNING * INTO hold;
            outcome := outcome || jsonb_build_object('hold', ledger__hold_json(hold));
        ELSE
            -- A rejection writes nothing: give the hold its reservation back.
            UPDATE ledger_accounts SET held = held + hold.amount WHERE tenant_id = p_tenant AND id = hold.account_id;
        END IF;
    END IF;
    RETURN ledger__remember(p_tenant, p_idempotency_key, p_request_hash, outcome);
END $$;

CREATE FUNCTION ledger_void_hold(p_tenant bigint, p_idempotency_key text, p_request_hash bytea, p_hold bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    outcome jsonb := ledger__claim(p_tenant, p_idempotency_key, p_request_hash);
    pending record;
    hold    ledger_holds;
BEGIN
    IF outcome IS NOT NULL THEN
        RETURN outcome;
    END IF;
    SELECT * INTO pending FROM ledger__pending_hold(p_tenant, p_hold);
    hold := pending.hold;
    outcome := pending.rejection;
    IF outcome IS NULL THEN
        hold := ledger__release_hold(hold, 'voided');
        outcome := jsonb_build_object('ok', true, 'hold', ledger__hold_json(hold));
    END IF;
    RETURN ledger__remember(p_tenant, p_idempotency_key, p_request_hash, outcome);
END $$;

-- Undoes an entry with a new, linked one (at most once); debits it restores get their original lots back.
CREATE FUNCTION ledger_reverse_entry(
    p_tenant bigint, p_idempotency_key text, p_request_hash bytea, p_entry bigint, p_metadata jsonb
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    outcome  jsonb := ledger__claim(p_tenant, p_idempotency_key, p_request_hash);
    original ledger_entries;
    accounts bigint[];
    amounts  bigint[];
    lot_sets jsonb[];
BEGIN
    IF outcome IS NOT NULL THEN
        RETURN outcome;
    END IF;
    -- The row lock serializes concurrent reversals of one entry (locking fires no UPDATE trigger).
    SELECT * INTO original FROM ledger_entries WHERE tenant_id = p_tenant AND id = p_entry FOR UPDATE;
    IF NOT FOUND THEN
        outcome := ledger__rejection('entry_not_found', jsonb_build_object('entry_id', p_entry));
    ELSIF original.reverses_entry_id IS NOT NULL THEN
        outcome := ledger__rejection('entry_is_reversal', jsonb_build_object('entry_id', p_entry));
    ELSIF EXISTS (SELECT 1 FROM ledger_entries WHERE tenant_id = p_tenant AND reverses_entry_id = p_entry) THEN
        outcome := ledger__rejection('already_reversed', jsonb_build_object('entry_id', p_entry));
    ELSE
        SELECT array_agg(account_id ORDER BY id), array_agg(-amount ORDER BY id), array_agg(lots ORDER BY id)
          INTO accounts, amounts, lot_sets
          FROM ledger_postings WHERE tenant_id = p_tenant AND entry_id = p_entry;
        outcome := ledger__apply_entry(p_tenant, 'reversal', accounts, amounts, lot_sets,
                                       coalesce(p_metadata, '{}'), p_idempotency_key, p_entry);
    END IF;
    RETURN ledger__remember(p_tenant, p_idempotency_key, p_request_hash, outcome);
END $$;

-- The expiry job: moves what is left of lots past their deadline into the tenant's expiry account, one entry
-- per member account, never touching held points. Only accounts with something to expire are taken, and
-- accounts busy in another transaction are skipped (the next run gets them), so every account a batch
-- takes makes progress. Returns the number of accounts expired: call again until 0.
CREATE FUNCTION ledger_expire_lots(p_now timestamptz, p_limit int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    acc      ledger_accounts;
    expiring bigint;
    expiry   bigint;
    outcome  jsonb;
    done     int := 0;
BEGIN
    FOR acc IN
        -- Driven by the due lots (ix_ledger_lots_due), so a run costs what is due, not what exists.
        SELECT * FROM ledger_accounts a
         WHERE (a.tenant_id, a.id) IN (SELECT tenant_id, account_id FROM ledger_lots
                                        WHERE remaining > 0 AND expires_at <= p_now)
           AND a.balance > a.held
         ORDER BY a.tenant_id, a.id LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    LOOP
        SELECT least(sum(remaining), acc.balance - acc.held) INTO expiring
          FROM ledger_lots WHERE tenant_id = acc.tenant_id AND account_id = acc.id AND remaining > 0 AND expires_at <= p_now;
        SELECT id INTO expiry FROM ledger_accounts
         WHERE tenant_id = acc.tenant_id AND currency_id = acc.currency_id AND kind = 'expiry'
           AND shard = acc.id % (SELECT system_shards FROM ledger_currencies
                                  WHERE tenant_id = acc.tenant_id AND id = acc.currency_id);
        -- Soonest expiry first is exactly the due lots first.
        outcome := ledger__apply_entry(acc.tenant_id, 'expiry', ARRAY[acc.id, expiry], ARRAY[-expiring, expiring],
                                       ARRAY[NULL, NULL]::jsonb[], jsonb_build_object('as_of', p_now), NULL, NULL);
        IF NOT (outcome->>'ok')::boolean THEN
            RAISE EXCEPTION 'expiry of account % refused: %', acc.id, outcome USING ERRCODE = 'data_corrupted';
        END IF;
        INSERT INTO outbox_events (tenant_id, aggregate_type, aggregate_id, event_type, payload)
        VALUES (acc.tenant_id, 'ledger_account', acc.id::text, 'points.expired', jsonb_build_object(
            'account_id', acc.id, 'amount', expiring, 'entry_id', (outcome #>> '{entry,id}')::bigint, 'as_of', p_now));
        done := done + 1;
    END LOOP;
    RETURN done;
END $$;

-- The hold expiry job: releases pending holds past their deadline. Returns how many (call again until 0).
CREATE FUNCTION ledger_expire_holds(p_now timestamptz, p_limit int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    hold ledger_holds;
    done int := 0;
BEGIN
    FOR hold IN
        SELECT * FROM ledger_holds WHERE status = 'pending' AND expires_at <= p_now
         ORDER BY expires_at LIMIT p_limit FOR UPDATE SKIP LOCKED
    LOOP
        PERFORM ledger__release_hold(hold, 'expired');
        done := done + 1;
    END LOOP;
    RETURN done;
END $$;
