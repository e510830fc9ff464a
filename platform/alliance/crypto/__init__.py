"""Cryptography of the platform: field encryption of personal data (signing keys and JWS come later)."""
