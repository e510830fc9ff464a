"""Secrets a development platform makes for itself: generated once under the data folder, readable only by
its owner, shared by every process on that folder. Production configures them instead."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def development_secret(path: Path, generate: Callable[[], str]) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(descriptor, "w") as file:
                file.write(generate())
    return path.read_text()
