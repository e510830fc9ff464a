"""Alliance platform kernel: settings, database, ledger, auth, crypto, worker, webhooks, the app."""
