-- The ledger's hot shape, a transfer: an entry of two postings, one account debited and another credited by the
-- same amount (every credit, debit, gift, capture and conversion leg). ledger__apply_entry hands it to
-- ledger__apply_transfer, which writes it in a handful of statements instead of a general loop over the legs:
-- one lock of both accounts, one entry, the lots, then both balances and both postings in one statement.
-- Same checks, same named results, same lots and the same outcome document as the general path (the property
-- tests of the ledger run both); entries of any other shape take the general path unchanged.

CREATE FUNCTION ledger__apply_transfer(
    p_tenant bigint, p_kind text, p_accounts bigint[], p_amounts bigint[], p_lots jsonb[],
    p_metadata jsonb, p_idempotency_key text, p_reverses bigint
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    debit_leg  int := CASE WHEN p_amounts[1] < 0 THEN 1 ELSE 2 END;
    credit_leg int := 3 - debit_leg;
    v_from     bigint := p_accounts[debit_leg];
    v_to       bigint := p_accounts[credit_leg];
    v_amount   bigint := p_amounts[credit_leg];
    acc        ledger_accounts;
    source     ledger_accounts;
    target     ledger_accounts;
    entry      ledger_entries;
    slices     jsonb;
    slice      jsonb;
    postings   jsonb;
BEGIN
    FOR acc IN SELECT * FROM ledger_accounts WHERE tenant_id = p_tenant AND id IN (v_from, v_to) ORDER BY id
               FOR UPDATE LOOP
        IF acc.id = v_from THEN source := acc; ELSE target := acc; END IF;
    END LOOP;
    IF source.id IS NULL OR target.id IS NULL THEN
        RETURN ledger__rejection('account_not_found', jsonb_build_object('account_ids', (
            SELECT jsonb_agg(x) FROM unnest(p_accounts) x
             WHERE x IS DISTINCT FROM source.id AND x IS DISTINCT FROM target.id)));
    ELSIF source.currency_id <> target.currency_id THEN
        RETURN ledger__rejection('unbalanced_entry', jsonb_build_object('currency_id', least(source.currency_id,
                                                                                              target.currency_id)));
    ELSIF source.non_negative AND source.balance - source.held < v_amount THEN
        RETURN ledger__rejection('insufficient_points', jsonb_build_object(
            'account_id', source.id, 'available', source.balance - source.held, 'requested', v_amount));
    END IF;

    INSERT INTO ledger_entries (tenant_id, kind, reverses_entry_id, idempotency_key, metadata)
    VALUES (p_tenant, p_kind, p_reverses, p_idempotency_key, coalesce(p_metadata, '{}'))
    RETURNING * INTO entry;

    -- Lots, as in the general path: a member debit consumes its soonest-expiring lots; a member credit gets the
    -- lots it is given or else inherits what the debit consumed, and what that does not cover never expires.
    IF source.kind = 'member' THEN
        slices := ledger__consume_lots(p_tenant, v_from, v_amount);
    END IF;
    IF target.kind = 'member' THEN
        IF p_lots[credit_leg] IS NOT NULL THEN
            FOR slice IN SELECT * FROM jsonb_array_elements(p_lots[credit_leg]) LOOP
                PERFORM ledger__add_lot(p_tenant, v_to, (slice->>0)::timestamptz, (slice->>1)::bigint);
            END LOOP;
        ELSIF slices IS NOT NULL THEN
            FOR slice IN SELECT * FROM jsonb_array_elements(slices) LOOP
                PERFORM ledger__add_lot(p_tenant, v_to, (slice->>0)::timestamptz, (slice->>1)::bigint);
            END LOOP;
        ELSE
            PERFORM ledger__add_lot(p_tenant, v_to, NULL, v_amount);
        END IF;
    END IF;

    -- Both balances and both postings, in the legs' order.
    WITH moved AS (
        UPDATE ledger_accounts a
           SET balance = a.balance + CASE WHEN a.id = v_from THEN -v_amount ELSE v_amount END, version = a.version + 1
         WHERE a.tenant_id = p_tenant AND a.id IN (v_from, v_to)
        RETURNING a.id, a.balance, a.version, a.currency_id
    ), posted AS (
        INSERT INTO ledger_postings
               (tenant_id, entry_id, account_id, currency_id, amount, balance_after, version_after, posted_at, lots)
        SELECT p_tenant, entry.id, m.id, m.currency_id, CASE WHEN m.id = v_from THEN -v_amount ELSE v_amount END,
               m.balance, m.version, clock_timestamp(), CASE WHEN m.id = v_from THEN slices END
          FROM moved m
         ORDER BY (m.id = v_from) <> (debit_leg = 1)
        RETURNING id, account_id, amount, balance_after, version_after, posted_at
    )
    SELECT jsonb_agg(jsonb_build_object('account_id', account_id, 'amount', posted.amount, 'balance_after', balance_after,
                                        'version_after', version_after, 'posted_at', posted_at) ORDER BY id)
      INTO postings FROM posted;

    RETURN jsonb_build_object('ok', true, 'entry', jsonb_build_object(
        'id', entry.id, 'kind', entry.kind, 'reverses_entry_id', entry.reverses_entry_id,
        'metadata', entry.metadata, 'created_at', entry.created_at, 'postings', postings));
END $$;

-- The general path, unchanged but for handing transfers to the fast one (unless the session sets
-- alliance.ledger_general_path = on: the differential test runs the same programs both ways).
DO $$
DECLARE
    body text := pg_get_functiondef('ledger__apply_entry(bigint, text, bigint[], bigint[], jsonb[], jsonb, text, bigint)'::regprocedure);
    marker text := 'SELECT array_agg(a) INTO accs FROM ledger__lock_accounts(p_tenant, p_accounts) a;';
BEGIN
    IF position(marker IN body) = 0 THEN
        RAISE EXCEPTION 'ledger__apply_entry is not the one this migration expects';
    END IF;
    EXECUTE replace(body, marker,
        'IF n = 2 AND p_accounts[1] <> p_accounts[2] AND p_amounts[1] = -p_amounts[2]' || chr(10) ||
        '       AND current_setting(''alliance.ledger_general_path'', true) IS DISTINCT FROM ''on'' THEN' || chr(10) ||
        '        RETURN ledger__apply_transfer(p_tenant, p_kind, p_accounts, p_amounts, p_lots, p_metadata,' || chr(10) ||
        '                                      p_idempotency_key, p_reverses);' || chr(10) ||
        '    END IF;' || chr(10) || '    ' || marker);
END $$;
