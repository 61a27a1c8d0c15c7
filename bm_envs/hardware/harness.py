"""Run the MuJoCo DDS bridge as a child process and talk to its control/status topics (tests and examples).

``BridgeProcess`` starts ``python -m bm_envs.hardware.bridge`` on loopback with a per-run topic suffix, so that
parallel runs on one host never see each other's messages even when their domain ids coincide.
:func:`free_domain_id` derives a domain id from the process id for the same reason.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bm_envs.hardware.sdk import close_endpoint, init_channels


def free_domain_id(lo: int = 100, hi: int = 230) -> int:
    """A DDS domain id in ``[lo, hi)`` derived from the process id (distinct for concurrent test processes)."""
    return lo + os.getpid() % (hi - lo)


class BridgeProcess:
    """A bridge child process. ``scenario`` may be a dict (written to a temp JSON file), a path or None."""

    def __init__(self, domain_id: int, task: str = "joystick", scenario: dict | str | None = None, seed: int = 0,
                 state_rate_hz: int = 250, interface: str = "lo", extra_args: tuple[str, ...] = ()):  # fmt: skip
        self.domain_id, self.interface = domain_id, interface
        self.suffix = "_" + secrets.token_hex(4)
        self.dir = Path(tempfile.mkdtemp(prefix="bm_bridge_"))
        self.ready_file = self.dir / "ready"
        self.log_path = self.dir / "bridge.log"
        args = [sys.executable, "-m", "bm_envs.hardware.bridge", "--domain-id", str(domain_id), "--interface", interface,
                "--task", task, "--seed", str(seed), "--state-rate-hz", str(state_rate_hz), "--topic-suffix",
                self.suffix, "--parent-pid", str(os.getpid()), "--ready-file", str(self.ready_file), *extra_args]  # fmt: skip
        if isinstance(scenario, dict):
            path = self.dir / "scenario.json"
            path.write_text(json.dumps(scenario))
            scenario = str(path)
        if scenario is not None:
            args += ["--scenario", str(scenario)]
        self._log = open(self.log_path, "w")  # noqa: SIM115 - open for the child's lifetime, closed in stop()
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._ctl = self._status_sub = None
        self._status: dict | None = None
        self._status_lock = threading.Lock()

    def topic(self, base: str) -> str:
        return base + self.suffix

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the bridge publishes its status over DDS (raises ``RuntimeError`` with its log otherwise)."""
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bridge did not start (exit code {self.proc.poll()}):\n{self.log()}")
            time.sleep(0.05)
        if self.status(timeout=max(deadline - time.monotonic(), 1.0)) is None:
            raise RuntimeError(f"no status from the bridge over DDS:\n{self.log()}")

    def log(self) -> str:
        """The bridge's log so far ('' once :meth:`stop` removed it)."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text() if self.log_path.exists() else ""

    # ------------------------------------------------------------------ control / status (needs DDS in this process)
    def _connect(self) -> None:
        if self._ctl is None:
            sdk = init_channels(self.domain_id, self.interface)
            self._ctl = sdk.ChannelPublisher(self.topic("rt/bm/bridge_ctl"), sdk.String_)
            self._ctl.Init()
            self._status_sub = sdk.ChannelSubscriber(self.topic("rt/bm/bridge_status"), sdk.String_)
            self._status_sub.Init(self._on_status, 0)
            self._sdk = sdk

    def _on_status(self, msg) -> None:
        try:
            s = json.loads(msg.data)
        except (ValueError, AttributeError):
            return
        with self._status_lock:
            self._status = s

    def control(self, wait: float = 3.0, **cmd) -> dict | None:
        """Send a control message, e.g. ``control(cmd="fault", kind="drop", param=0.3)``, and wait up to ``wait`` s
        for the bridge's status confirming it was handled (returned; None without confirmation or ``wait=0``)."""
        self._connect()
        before = (self.status(timeout=0.0) or {}).get("controls", 0)
        self._ctl.Write(self._sdk.String_(json.dumps(cmd)), 2.0)  # waits for the bridge's reader to be matched
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            s = self.status(timeout=0.0)
            if s is not None and s.get("controls", 0) > before:
                return s
            time.sleep(0.005)
        return None

    def status(self, newer_than: float = 0.0, timeout: float = 2.0) -> dict | None:
        """Latest status published after ``newer_than`` (monotonic s), waiting up to ``timeout`` s."""
        self._connect()
        deadline = time.monotonic() + timeout
        while True:
            with self._status_lock:
                s = self._status
            if s is not None and s["t"] > newer_than:
                return s
            if time.monotonic() > deadline:
                return s
            time.sleep(0.02)

    # ------------------------------------------------------------------ shutdown
    def kill(self) -> float:
        """SIGKILL the bridge (a crash); returns the monotonic time of the kill."""
        t = time.monotonic()
        self.proc.kill()
        self.proc.wait(5)
        return t

    def stop(self, keep_files: bool = False) -> None:
        """Terminate the bridge (SIGTERM, then SIGKILL) and remove its temp folder unless ``keep_files``."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for ep in (self._ctl, self._status_sub):
            if ep is not None:
                close_endpoint(ep)
        self._ctl = self._status_sub = None
        self._log.close()
        if not keep_files:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
