"""Child processes that die with their parent: the embedded servers and the quick start's API, worker
and scheduler. Each runs in its own session (a terminal's Ctrl-C reaches only the parent, which stops the
children in order) and, on Linux, gets a parent-death signal, so not even a SIGKILLed parent leaves one
behind. The signal fires when the spawning *thread* exits: spawn from a thread that lives as long as
the children should (normally the main thread)."""

from __future__ import annotations

import ctypes
import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import psutil

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def spawn_child(
    argv: list[str],
    *,
    death_signal: signal.Signals,
    log_path: Path | None = None,
    user: pwd.struct_passwd | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen:
    """Start `argv` in its own session, as `user` if given; output appended to `log_path`, else inherited;
    on Linux `death_signal` is delivered to it when the calling thread exits."""
    parent_pid = os.getpid()

    def before_exec() -> None:
        if user is not None:
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
        if _libc is not None:
            # After setuid/setgid: changing credentials clears the parent-death signal.
            _libc.prctl(PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0)
            # The parent may have died before prctl, in which case no signal will ever come.
            if os.getppid() != parent_pid:
                os._exit(1)

    log = open(log_path, "ab") if log_path else None
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT if log else None,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            # Unsafe only if another thread holds a lock at fork time; before_exec makes system calls, no more.
            preexec_fn=before_exec,  # noqa: PLW1509
        )
    finally:
        if log:
            log.close()


def is_gone(process: psutil.Process) -> bool:
    # A zombie has exited; only its parent can reap it, and it holds nothing any more.
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(processes: list[psutil.Process], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not all(is_gone(p) for p in processes):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def kill_tree(pid: int, first_signal: signal.Signals, timeout: float = 10.0) -> None:
    """Send `first_signal` to a process, then SIGKILL it and its children if they linger."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
        root.send_signal(first_signal)
    except psutil.NoSuchProcess:
        return
    if wait_gone(processes, timeout):
        return
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    wait_gone(processes, timeout)
