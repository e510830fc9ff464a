"""What the sync and async clients share: configuration, request building, the retry policy and response
parsing. The clients add only the transport call and the way they wait."""

from __future__ import annotations

import os
import platform
import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from alliance_sdk._errors import AllianceError, APIConnectionError, APITimeoutError, error_from_response
from alliance_sdk._request import SIGNATURE_HEADER, APIRequest, json_bytes
from alliance_sdk._version import __version__

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

T = TypeVar("T")

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
DEFAULT_MAX_RETRIES = 2
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
# A longer Retry-After is not worth blocking the caller for; plain backoff applies instead.
MAX_RETRY_AFTER = 60.0
USER_AGENT = f"alliance-sdk/{__version__} python/{platform.python_version()}"

# Failures after which the request may or may not have reached the server; an idempotency key (or the
# call's own idempotence) makes a retry safe.
RETRYABLE_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class BaseClient:
    _http: httpx.Client | httpx.AsyncClient

    def __init__(
        self, *, api_key: str | None, base_url: str | None, timeout: float | httpx.Timeout, max_retries: int,
        signing_key: str | bytes | None, signing_kid: str | None, tenant_id: int | None,
    ) -> None:
        api_key = api_key or os.environ.get("ALLIANCE_API_KEY")
        if not api_key:
            raise AllianceError("No API key: pass api_key=... or set ALLIANCE_API_KEY.")
        self.api_key = api_key
        self.base_url = (base_url or os.environ.get("ALLIANCE_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.signing_key = signing_key or os.environ.get("ALLIANCE_SIGNING_KEY")
        self.signing_kid = signing_kid or os.environ.get("ALLIANCE_SIGNING_KID")
        # The signing key parsed, with the PEM it was parsed from: parsed on the first signed call, not per attempt.
        self._parsed_signing_key: tuple[str | bytes, Ed25519PrivateKey] | None = None
        # The brand's id, which signatures name: given, or read from GET /v1/brand before the first signed call.
        self.tenant_id = tenant_id
        # The platform's JWKS, kept for verifying its signatures (countersignatures, statements); fetched again when
        # it lacks the key one names.
        self._platform_jwks: dict[str, Any] | None = None

    def __repr__(self) -> str:  # never the keys
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _check_can_sign(self) -> None:
        if not (self.signing_key and self.signing_kid):
            raise AllianceError(
                "This call is signed with the brand's signing key: pass signing_key=... (the private PEM) and "
                "signing_kid=... (the kid its public key is registered under), or set ALLIANCE_SIGNING_KEY and "
                "ALLIANCE_SIGNING_KID."
            )

    def _needs_platform_jwks(self, jws: str) -> bool:
        """Whether to fetch the platform's JWKS before verifying `jws`: none is cached yet, or the cached one lacks
        the key `jws` names (the platform rotated its key since)."""
        from alliance_sdk import signing  # here: verifying needs the [signing] extra, the rest of the SDK does not

        if self._platform_jwks is None:
            return True
        kid = signing._countersignature_kid(jws)
        return kid is not None and all(key.get("kid") != kid for key in self._platform_jwks.get("keys", []))

    def _build_request(self, request: APIRequest, tenant_id: int | None = None) -> httpx.Request:
        """The request of one attempt. `tenant_id` is the brand's id, needed for a signed request."""
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "*/*" if request.raw else "application/json",
                   "User-Agent": USER_AGENT}
        content = None if request.body is None else json_bytes(request.body)
        if content is not None:
            headers["Content-Type"] = "application/json"
        if request.idempotency_key is not None:
            headers["Idempotency-Key"] = request.idempotency_key
        if request.signed:
            headers.update(self._signature_header(request, tenant_id, content or b""))
        return self._http.build_request(request.method, self.base_url + request.path, content=content,
                                        params=request.params, headers=headers, timeout=self.timeout)

    def _signature_header(self, request: APIRequest, tenant_id: int, content: bytes) -> dict[str, str]:
        from alliance_sdk import signing  # here, not at the top: the SDK's core works without the [signing] extra

        if self._parsed_signing_key is None or self._parsed_signing_key[0] is not self.signing_key:
            self._parsed_signing_key = (self.signing_key, signing._private_key(self.signing_key))
        # The API's own path is signed: a path prefix in base_url belongs to whatever proxies the API.
        signature = signing.sign_request(self._parsed_signing_key[1], kid=self.signing_kid, tenant=tenant_id,
                                         method=request.method, path=request.path, body=content)
        return {SIGNATURE_HEADER: signature}

    def _delay_after_response(self, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before retrying, or None when this response is the outcome."""
        if attempt >= self.max_retries or not _is_retryable(response):
            return None
        retry_after = _retry_after(response)
        return retry_after if retry_after is not None else _backoff(attempt)

    def _delay_after_error(self, attempt: int, error: httpx.TransportError) -> float | None:
        if attempt >= self.max_retries or not isinstance(error, RETRYABLE_TRANSPORT_ERRORS):
            return None
        return _backoff(attempt)

    @staticmethod
    def _connection_error(error: httpx.TransportError) -> APIConnectionError:
        if isinstance(error, httpx.TimeoutException):
            return APITimeoutError()
        return APIConnectionError(f"Connection error: {error!r}")

    @staticmethod
    def _parse(request: APIRequest, response: httpx.Response, parse: Callable[[Any], T]) -> T:
        if not response.is_success:
            raise error_from_response(response)
        if request.raw:
            return parse(response)
        return parse(response.json() if response.content else None)  # 204: no body


def _is_retryable(response: httpx.Response) -> bool:
    if response.status_code == 429 or response.status_code >= 500:
        return True
    # "conflict" is a concurrent change that lost a race. "signature_replayed" means a copy of this very attempt
    # (e.g. resent by a proxy) reached the platform first: the retry is signed afresh and keeps the Idempotency-Key,
    # so it gets that copy's outcome. Other 409s (member_frozen...) are final.
    return response.status_code == 409 and _problem_code(response) in ("conflict", "signature_replayed")


def _problem_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return max(seconds, 0.0) if seconds <= MAX_RETRY_AFTER else None


def _backoff(attempt: int) -> float:
    # Jitter keeps clients that failed together from retrying together.
    return min(INITIAL_RETRY_DELAY * 2**attempt, MAX_RETRY_DELAY) * random.uniform(0.75, 1.0)
