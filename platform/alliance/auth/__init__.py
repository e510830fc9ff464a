"""Who is calling: API keys (operator and brand), stored only as hashes, and the principal they resolve to."""
