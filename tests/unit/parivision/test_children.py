"""Children that end with the command that started them (parivision/cli/children.py), with
real processes: the kernel's parent-death signal, and a stop that does not wait for ever."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from infra.process import pid_alive, wait_until
from parivision.cli.children import child_env, stop_all

SLEEPER = textwrap.dedent(
    """
    import os, time
    from parivision.cli.children import die_with_parent
    die_with_parent()
    print(os.getpid(), flush=True)
    time.sleep(120)
    """
)


def test_a_child_gets_sigterm_when_its_parent_is_killed():
    # The parent starts the child as the commands do, prints its pid, then is killed outright.
    parent_code = textwrap.dedent(
        f"""
        import os, signal, subprocess, sys
        from parivision.cli.children import child_env
        child = subprocess.Popen([sys.executable, "-c", {SLEEPER!r}],
                                 env=child_env(dict(os.environ)), stdout=subprocess.PIPE, text=True)
        print(child.stdout.readline().strip(), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    parent = subprocess.run(
        [sys.executable, "-c", parent_code], capture_output=True, text=True, timeout=60
    )
    child = int(parent.stdout.strip())
    assert parent.returncode == -9
    assert wait_until(lambda: not pid_alive(child), 30), "the child outlived its killed parent"


def test_a_child_started_without_the_mark_is_left_alone():
    # Not started by a PariVision command (no parent pid in its environment): nothing changes.
    env = child_env({})
    env.pop("PARIVISION_PARENT_PID")
    child = subprocess.Popen([sys.executable, "-c", SLEEPER], env=env, stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline().strip().isdigit()
        assert child.poll() is None
    finally:
        child.kill()
        child.wait(10)


def test_stop_all_kills_what_ignores_sigterm_after_the_deadline():
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert stubborn.stdout.readline().strip() == "ready"
    stop_all([polite, stubborn], timeout=1.0)
    assert polite.returncode == -15  # SIGTERM was enough
    assert stubborn.returncode == -9  # SIGKILL once the deadline passed
