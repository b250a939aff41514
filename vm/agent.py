"""Guest agent: one process per VM, takes cases as JSON lines on stdin, answers with observations.

This file runs inside the guest, like fixtures/ (guest-side code). The protocol is vm/protocol.py,
shared with the host. Every case runs between /dev/kmsg markers; THP knobs an earlier case changed are
restored before it, unless it sets them itself (fixtures/thp.py).
"""

from __future__ import annotations

import errno
import gc
import json
import os
import platform
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from vm import protocol


def _send(out: TextIO, event: str, **fields: object) -> None:
    out.write(protocol.event_line(event, **fields))
    out.flush()


def facts() -> dict[str, object]:
    from fixtures import thp

    return {
        "thp_disable_kept_across_execve": THP_DISABLE_KEPT,
        "release": platform.release(),
        "proc_version": open("/proc/version").read().strip(),
        "thp": thp.read_all() if thp.available() else None,
        "cmdline": open("/proc/cmdline").read().strip(),
        # The geometry the cases run at, from the guest itself (not from the image or config).
        "machine": platform.machine(),
        "page_size": os.sysconf("SC_PAGE_SIZE"),
        "hpage_pmd_size": _hpage_pmd_size(),
    }


def _hpage_pmd_size() -> int | None:
    """The THP (PMD) size in bytes; None on a kernel without THP."""
    try:
        return int(Path("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size").read_text())
    except (OSError, ValueError):
        return None


SPLAT_LINE = "WARNING: CPU: 0 PID: 1 at mm/khugepaged.c:0 collapse_conformance_selftest+0x0/0x0"


def selftest(action: str, argument: str) -> dict[str, object]:
    """Harness self-tests: make the guest misbehave on purpose, so the host's handling can be checked."""
    if action == "panic":
        Path("/proc/sys/kernel/sysrq").write_text("1")
        Path("/proc/sysrq-trigger").write_text("c")
    elif action == "hang":
        time.sleep(1e6)
    elif action == "splat":
        Path("/dev/kmsg").write_text(SPLAT_LINE + "\n")
        return {"wrote": SPLAT_LINE}
    elif action == "isolation":
        # ARGUMENT: "forbidden-path:allowed-path"; the second is in the writable results directory.
        return {key: _try_write(Path(path)) for key, path in zip(("forbidden", "allowed"), argument.split(":"), strict=True)}
    return {}


def _try_write(path: Path) -> str | None:
    """None if PATH could be written, else the errno name."""
    try:
        path.write_text("written from the guest\n")
        return None
    except OSError as err:
        return errno.errorcode.get(err.errno or 0, str(err.errno))


def run_case(case: dict[str, object]) -> object:
    """The observation of one case as JSON data: a workload's (fixtures/observation.py), or a self-test's."""
    from fixtures import observation, thp, workload

    if "selftest" in case:
        return selftest(str(case["selftest"]), str(case.get("argument", "")))
    laps = workload.Laps()
    request = workload.Request.of({key: str(value) for key, value in case.items()})
    laps.lap("request")
    # Knobs an earlier case changed go back now, unless this case sets them itself: harness time,
    # so not in workload_s (the overhead make bench reports), but a phase of the guest's time.
    restored = thp.restore(keep=frozenset(workload.knobs_for(request)))
    laps.lap("knobs.restore")
    started = time.monotonic()
    try:
        observed = workload.run(request, laps)
    finally:
        workload_s = time.monotonic() - started
    return observation.to_json(replace(observed, knobs_restored=restored, workload_s=round(workload_s, 4)))


REEXEC_MARK = "COLLAPSE_AGENT_THP_DISABLED"
THP_DISABLE_KEPT: bool | None = None  # after the re-exec: did the kernel keep the flag (rule A4.inherit)?


def _reexec_without_khugepaged() -> None:
    """Re-exec with PR_SET_THP_DISABLE so the agent's mm is never on khugepaged's list.

    khugepaged_fork() registers a child whenever its parent is registered, and khugepaged scans
    every registered mm as soon as its thread (re)starts on a write to 'enabled'. A fresh mm from
    execve() is unregistered, and the prctl (kept across fork and execve) keeps it so: workload
    owners start unregistered and with small pages, and only the call under test can collapse.
    """
    from fixtures import syscalls as sc

    global THP_DISABLE_KEPT
    if os.environ.get(REEXEC_MARK) == "1":
        THP_DISABLE_KEPT = sc.prctl_get_thp_disable() != 0
        if not THP_DISABLE_KEPT:  # the kernel broke A4.inherit: its cases say so; set again, carry on
            sc.prctl_thp_disable(1)
        return
    sc.prctl_thp_disable(1)
    os.execve(sys.executable, [sys.executable, "-u", "-m", "vm.agent"], {**os.environ, REEXEC_MARK: "1"})


def main() -> None:
    _reexec_without_khugepaged()
    # Import everything a case needs now: under TCG the first import costs seconds, and that
    # belongs to the boot, not to the first case.
    from fixtures import workload  # noqa: F401
    from fixtures.kmsg import KernelLog

    # Every object so far (modules, functions: nearly all of the heap) out of the collector's reach:
    # a collection in a forked owner would otherwise write to every object's header and copy the
    # whole heap page by page (copy-on-write), at each case's fork.
    gc.freeze()

    kernel_log = KernelLog()
    out = os.fdopen(os.dup(1), "w")
    # Whatever else the workloads print goes to stderr, never into the protocol stream.
    os.dup2(2, 1)
    _send(out, protocol.READY, facts=facts())
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("op") == protocol.QUIT:
            _send(out, protocol.BYE)
            return
        case_id = request.get("id", "?")
        kernel_log.case(case_id, begin=True)
        started = time.monotonic()
        try:
            reply: dict[str, object] = {"ok": True, "observed": run_case(request["case"])}
        except Exception:
            reply = {"ok": False, "error": traceback.format_exc()}
        reply["guest_s"] = round(time.monotonic() - started, 4)
        reply["kmsg"] = kernel_log.case(case_id, begin=False)
        _send(out, protocol.RESULT, id=case_id, **reply)


if __name__ == "__main__":
    main()
