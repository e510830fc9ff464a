"""Cryptography of the platform: field encryption of personal data, and the platform's signing key (JWS)."""
