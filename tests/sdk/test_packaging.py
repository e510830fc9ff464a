"""The SDK is its own distribution: importing it pulls in neither the server nor its database stack."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_sdk_imports_no_server_module():
    # A fresh interpreter: this test process has the server loaded already.
    probe = (
        "import sys, alliance_sdk; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'alliance', 'tenants', 'litestar'}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
