"""Fuzzes every operation of the API's own OpenAPI document, in-process, on the real PostgreSQL and Redis:
no input ever gets a server error, and every error answer is a problem document.

Brand routes are called with a brand's key (the brand is onboarded through the operator API first),
operator routes with the operator's key, and every call carries a fresh Idempotency-Key, so the fuzzer
reaches the services behind the authentication and idempotency checks."""

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi

from alliance.app import create_app
from alliance.errors import PROBLEM_MEDIA_TYPE
from tests.api import bearer

OPENAPI_PATH = "/docs/openapi.json"
EXAMPLES_PER_OPERATION = 15


@pytest.fixture(scope="module")
def app(database_url, redis_url, tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ALLIANCE_DATA_DIR", str(tmp_path_factory.mktemp("fuzz")))
        # The fuzzer outpaces a brand's real traffic: a 429 would only hide what it was about to find.
        env.setenv("ALLIANCE_RATE_LIMIT_PER_SECOND", "1000000")
        from alliance.settings import get_settings

        get_settings.cache_clear()
        yield create_app(database_url=database_url, redis_url=redis_url)
        get_settings.cache_clear()


@pytest.fixture(scope="module")
def keys(app, operator_key) -> dict[str, dict[str, str]]:  # noqa: F811
    """Headers for each side of the API: a freshly onboarded brand's key and the operator's."""
    operator = bearer(operator_key)
    with asgi.get_client(app) as http:
        tenant = http.post("/v1/admin/tenants", headers=operator, json={
            "code": f"fuzz-{uuid.uuid4().hex[:8]}", "name": "Fuzz", "currency_code": "FUZZ", "point_value": "0.1"})
        assert tenant.status_code == 201, tenant.text
        key = http.post(f"/v1/admin/tenants/{tenant.json()['id']}/keys", headers=operator, json={"name": "fuzz"})
        assert key.status_code == 201, key.text
    return {"brand": bearer(key.json()["secret"]), "operator": operator}


@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.openapi.from_asgi(OPENAPI_PATH, app)


def check_response(case: schemathesis.Case, headers: dict[str, str]) -> None:
    response = case.call(headers=headers | {"idempotency-key": uuid.uuid4().hex})
    case.validate_response(response, checks=[not_a_server_error])
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.startswith(PROBLEM_MEDIA_TYPE), (
            f"{case.method} {case.formatted_path} answered {response.status_code} as {content_type!r}"
        )


def fuzz(operation: schemathesis.APIOperation, mode: GenerationMode, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        check_response(case, headers)

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        pytest.skip(f"{operation.label} takes no input that could be made invalid")


# Not `schemathesis.pytest.from_fixture(...).parametrize()`: with pytest 9 that loader fails on the removed
# Node._nodeid. Each operation and generation mode is a subtest instead, so one failure hides no other.
def test_no_input_gets_a_server_error_and_every_error_is_a_problem(api_schema, keys, subtests):
    for result in api_schema.get_all_operations():
        operation = result.ok()
        side = "operator" if operation.path.startswith("/v1/admin") else "brand"
        for mode in GenerationMode:
            with subtests.test(operation=operation.label, mode=mode.value):
                fuzz(operation, mode, keys[side])
