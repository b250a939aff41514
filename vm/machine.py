"""A throwaway virtme-ng VM running the guest agent; cases go in as JSON lines, observations come back."""

from __future__ import annotations

import os
import re
import selectors
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from reports.jsonvalues import mapping
from vm import protocol, vng
from vm.kernels import Kernel

REPO = Path(__file__).resolve().parent.parent


class HarnessError(Exception):
    """The harness could not obtain an observation (boot failure, agent crash, timeout)."""

    def __init__(self, message: str, console: str = "") -> None:
        super().__init__(message)
        self.console = console


@dataclass(frozen=True)
class VMConfig:
    accel: str  # "kvm" or "tcg"
    accel_reason: str = ""  # why that accelerator (vm.accel.choose), recorded with every case
    memory: str = "2G"  # raised per kernel to what its THP size needs (memory_for)
    cpus: int = 2
    boot_timeout_s: float = 300.0
    case_timeout_s: float = 60.0  # scaled by TCG_SLOWDOWN under TCG


# A kernel that stopped making progress says so itself, after its own limits (RCU's 21 s, the soft-lockup
# watchdog's 20 s): the wait ends there rather than at the case's limit.
STALL = re.compile(r"rcu: INFO: rcu_\w+ (?:self-)?detected stall|watchdog: BUG: soft lockup")
CRASH_START = re.compile(
    r"sysrq: Trigger a crash|Kernel panic - not syncing|\bBUG: |\bOops: |general protection fault|\bWARNING: |" + STALL.pattern
)

# Measured here: a Debian kernel boots in ~2 s under KVM and 11-17 s under TCG; cases scale alike.
TCG_SLOWDOWN = 5.0
# Another architecture under TCG is slower again: an arm64 guest on this x86 host took 140 s from
# QEMU's start to the agent's ready (the kernel alone ~20 s): boot and case timeouts stretch by this.
FOREIGN_SLOWDOWN = 3.0
# A guest under a quarter of one CPU on average is idle: waiting on nothing, not slowed by other work.
IDLE_SHARE = 0.25
# How often a wait past its wall-clock time looks at the guest's CPU time again.
RECHECK_S = 2.0


def out_of_time(timeout_s: float, wall_s: float, cpu_s: float) -> bool:
    """Whether a guest given TIMEOUT_S to answer has used it up, WALL_S after the wait began, having used
    CPU_S of CPU since. Never before TIMEOUT_S of wall time; after it, once the guest has also used
    TIMEOUT_S of CPU, or sat idle: other work on the machine slows a guest without using up its time."""
    if wall_s < timeout_s:
        return False
    return cpu_s >= timeout_s or cpu_s < IDLE_SHARE * wall_s


# Guest RAM per THP: room for the cases' few huge pages at a time, the agent and the kernel.
PMDS_OF_MEMORY = 16


def memory_for(kernel: Kernel, requested: str) -> str:
    """REQUESTED, unless KERNEL's THP size needs more (a 16K-page kernel's THP is 32 MiB, a 64K one's 512 MiB)."""
    needed = PMDS_OF_MEMORY * kernel.pmd_size
    return requested if vng.memory_bytes(requested) >= needed else f"{needed // vng.MIB}M"


def accel_for(kernel: Kernel, config: VMConfig) -> tuple[str, str]:
    """(accelerator, reason) for KERNEL: the run's choice, but always TCG for another architecture than the host's."""
    if kernel.foreign:
        return "tcg", f"a {kernel.arch.name} kernel on this host is emulated (TCG)"
    return config.accel, config.accel_reason


class GuestVM:
    """One VM per kernel. start() boots it and waits for the agent; run() sends one case."""

    def __init__(self, kernel: Kernel, config: VMConfig, results_dir: Path) -> None:
        self.kernel = kernel
        self.config = config
        self.results_dir = results_dir
        self.console_path = results_dir / "console.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.accel, self.accel_reason = accel_for(kernel, config)
        self.memory = memory_for(kernel, config.memory)
        self.facts: dict[str, object] = {}
        self.boot_s = 0.0
        self._buffer = b""
        self._console_offset = 0

    @property
    def foreign_scale(self) -> float:
        """How much longer than the host's architecture this kernel's boot and cases take."""
        return FOREIGN_SLOWDOWN if self.kernel.foreign else 1.0

    @property
    def scale(self) -> float:
        return (TCG_SLOWDOWN if self.accel == "tcg" else 1.0) * self.foreign_scale

    def start(self) -> None:
        """Boot, tried vng.START_ATTEMPTS times: a VM start can fail transiently."""
        for attempt in range(1, vng.START_ATTEMPTS + 1):
            try:
                self._boot()
                return
            except HarnessError:
                self.close()
                if attempt == vng.START_ATTEMPTS:
                    raise

    def _boot(self) -> None:
        self.results_dir.mkdir(parents=True, exist_ok=True)
        view = vng.guest_view(self.kernel, REPO, self.results_dir)
        env = f"COLLAPSE_SCRATCH={shlex.quote(view.results)}"
        env += f" PYTHONPYCACHEPREFIX={shlex.quote(view.pycache)}" if view.pycache else " PYTHONDONTWRITEBYTECODE=1"
        env += f" PYTHONPATH={shlex.quote(view.pythonpath)}" if view.pythonpath else ""
        agent = f"cd {shlex.quote(view.repo)} && {env} exec {shlex.quote(view.python)} -u -m vm.agent"
        command = vng.command(
            self.kernel, agent, memory=self.memory, accel=self.accel, cpus=self.config.cpus, rwdir=self.results_dir, repo=REPO
        )
        console = self.console_path.open("ab")
        self._console_offset = console.tell()
        console.write(f"\n=== {time.strftime('%F %T')} {shlex.join(command)}\n".encode())
        console.flush()
        started = time.monotonic()
        self.proc = subprocess.Popen(
            command,
            cwd=self.kernel.tree or REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=console,
            start_new_session=True,  # one process group: vng, qemu and helpers die together
            env=vng.environment(),
        )
        console.close()
        self._buffer = b""
        ready = self._receive(self.config.boot_timeout_s * self.foreign_scale, "boot")
        if ready.get("event") != protocol.READY:
            raise HarnessError(f"agent sent {ready!r} instead of ready", self.console_tail())
        self.facts = mapping(ready["facts"])  # the agent's facts() dict
        self.boot_s = time.monotonic() - started

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def run(self, case_id: str, case: dict[str, object]) -> dict[str, object]:
        if self.proc is None or not self.alive:
            raise HarnessError("VM is not running", self.console_tail())
        self._console_offset = self.console_path.stat().st_size
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(protocol.run_request(case_id, case))
            self.proc.stdin.flush()
        except BrokenPipeError as err:
            raise HarnessError("VM went away before the case was sent", self.console_tail()) from err
        reply = self._receive(self.config.case_timeout_s * self.scale, f"case {case_id}")
        if reply.get("id") != case_id:
            raise HarnessError(f"agent answered {reply.get('id')!r} for case {case_id!r}", self.console_tail())
        if not reply.get("ok"):
            raise HarnessError(f"guest agent error:\n{reply.get('error')}", self.console_tail())
        return reply

    def _receive(self, timeout: float, what: str) -> dict[str, object]:
        """The next protocol line from the agent, or HarnessError with the console's last lines."""
        assert self.proc is not None and self.proc.stdout is not None
        started, cpu_before = time.monotonic(), vng.group_cpu_s(self.proc.pid)
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                while b"\n" in self._buffer:
                    line, self._buffer = self._buffer.split(b"\n", 1)
                    text = line.decode(errors="replace")
                    event = protocol.parse_event(text)
                    if event is not None:
                        return event
                wall = time.monotonic() - started
                if wall >= timeout:
                    cpu = vng.group_cpu_s(self.proc.pid) - cpu_before
                    if out_of_time(timeout, wall, cpu):
                        self.close(graceful=False)
                        used = f"{wall:.0f} s waited, {cpu:.0f} s of CPU used"
                        message = f"{what}: no answer from the guest agent within {timeout:.0f} s ({used})"
                        raise HarnessError(message, self.console_tail())
                if not selector.select(RECHECK_S):  # quiet: has the kernel said it is stuck?
                    stall = self._stall_report()
                    if stall:
                        self.close(graceful=False)
                        raise HarnessError(f"{what}: the guest kernel reported a stall after {wall:.0f} s: {stall}", self.console_tail())
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    status = self.proc.wait()
                    self.close()
                    raise HarnessError(f"{what}: VM exited with status {status}", self.console_tail())
                self._buffer += chunk

    def _console_since_start(self) -> str:
        """The console printed since the current boot or case began ('' if it cannot be read)."""
        try:
            with self.console_path.open("rb") as console:
                console.seek(self._console_offset)
                return console.read().decode(errors="replace")
        except OSError:
            return ""

    def _stall_report(self) -> str:
        """The first stall line the console printed since the current boot or case began, or ''."""
        text = self._console_since_start()
        found = STALL.search(text)
        return text[found.start() : text.find("\n", found.start())].strip() if found else ""

    def console_tail(self, lines: int = 40) -> str:
        """The console printed since the current boot or case began: from its first crash line
        (panic, BUG, Oops, WARNING) for up to 80 lines, else its last LINES lines."""
        text = self._console_since_start().splitlines()
        crash = next((i for i, line in enumerate(text) if CRASH_START.search(line)), None)
        return "\n".join(text[crash : crash + 80] if crash is not None else text[-lines:])

    def close(self, graceful: bool = True) -> None:
        """Ask the agent to quit and the VM to power off; kill the whole process group if it does not."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if graceful and proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.write(protocol.quit_request())
                proc.stdin.close()
                proc.wait(timeout=30 * self.scale)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if proc.poll() is None:
            vng.stop_group(proc)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None and not stream.closed:
                stream.close()
