"""Signed transfers: brands' Ed25519 signing keys, and verification of the JWS a brand puts on a request."""

SIGNATURE_HEADER = "Alliance-Signature"  # where a signed request carries its detached compact JWS

__all__ = ["SIGNATURE_HEADER"]
