"""The operator CLI: brands, keys and members as tables, refusals as clean errors."""

import os


def test_operator_manages_brands_keys_and_members_from_the_cli(cli):
    code = f"cli-{os.urandom(3).hex()}"
    created = cli("tenants", "create", "--code", code, "--name", "Airline", "--currency", "MILES", "--point-value", "0.05")
    assert created.exit_code == 0 and f"brand {code} admitted" in created.output
    assert code in cli("tenants", "list").output

    invalid = cli("tenants", "create", "--code", "Not A Slug", "--name", "X", "--currency", "M", "--point-value", "1")
    assert invalid.exit_code == 1 and "validation_error" in invalid.output

    duplicate = cli("tenants", "create", "--code", code, "--name", "X", "--currency", "MILES", "--point-value", "1")
    assert duplicate.exit_code == 1 and "tenant_code_taken" in duplicate.output

    issued = cli("keys", "create", "--tenant", code, "--name", "pos")
    secret = issued.output.strip().splitlines()[-1]
    assert issued.exit_code == 0 and secret.startswith("alk_")
    key_id = secret.split("_")[1]
    assert key_id in cli("keys", "list", "--tenant", code).output
    assert cli("keys", "revoke", "--tenant", code, key_id).exit_code == 0

    assert "Members of" in cli("members", "list", "--tenant", code).output
    missing = cli("members", "show", "--tenant", code, "nobody")
    assert missing.exit_code == 1 and "member_not_found" in missing.output
    assert "tenant_not_found" in cli("keys", "list", "--tenant", "no-such-brand").output


def test_operator_key_is_bootstrapped_from_the_cli(cli):
    issued = cli("admin", "create-key", "--name", "ops")
    assert issued.exit_code == 0 and issued.output.strip().splitlines()[-1].startswith("alo_")
