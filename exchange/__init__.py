"""The exchange domain: signing keys and verification of signed transfers (exchange.signing); alliance
membership, rate cards, quotes and conversions come next."""
