"""Production logs are JSON lines carrying the request id, with secrets redacted."""

import json
import logging

import structlog

from alliance.logs import configure_logging


def test_production_lines_are_json_with_request_id_and_no_secrets(capsys):
    configure_logging(json=True)
    try:
        with structlog.contextvars.bound_contextvars(request_id="req-1"):
            structlog.get_logger("alliance.test").info("key issued", api_key="ak_live_secret", tenant_id=7)
            logging.getLogger("some.library").warning("from the standard library")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        configure_logging(json=False)
    ours, theirs = lines
    assert ours["event"] == "key issued" and ours["request_id"] == "req-1" and ours["tenant_id"] == 7
    assert ours["api_key"] == "[redacted]" and "ak_live_secret" not in json.dumps(lines)
    assert theirs["request_id"] == "req-1" and theirs["level"] == "warning"
