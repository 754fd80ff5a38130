"""deploy/cluster.py stopped by SIGTERM (systemctl stop, a supervisor, ``kill``) stops every process
it started, as Ctrl-C does: they run in sessions of their own, so nothing else reaches them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The real main() and Cluster.down(); up() starts one long-lived process the way spawn() does.
SCRIPT = """
import importlib.util, subprocess, sys
spec = importlib.util.spec_from_file_location("cluster", sys.argv[1])
cluster = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cluster)

def up(self):
    self.processes["sleeper"] = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                                 start_new_session=True)
    print("child", self.processes["sleeper"].pid, flush=True)
    return self

cluster.Cluster.up = up
sys.argv[1:] = ["--database-url", "sqlite://", "--dir", sys.argv[2], "--listen", "1"]
cluster.main()
print("stopped", flush=True)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_stops_every_process_of_the_cluster(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, str(ROOT / "deploy" / "cluster.py"), str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    child = None
    try:
        first = process.stdout.readline()
        assert first.startswith("child "), first + process.stderr.read()
        child = int(first.split()[1])
        assert "stops it" in process.stdout.readline()  # the banner: main() is waiting
        process.send_signal(signal.SIGTERM)
        out, errors = process.communicate(timeout=60)
        assert process.returncode == 0 and "stopped" in out, errors[-600:]
        deadline = time.monotonic() + 10
        while _alive(child):  # down() waited for it: gone (reaped) by the time main() returned
            assert time.monotonic() < deadline, "the cluster's process outlived a SIGTERM"
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)
