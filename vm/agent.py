"""Guest agent: one process per VM, takes cases as JSON lines on stdin, answers with observations.

Protocol lines on stdout start with PREFIX so that nothing else the guest prints is mistaken for
an answer. Every case runs between /dev/kmsg markers and with THP knobs restored afterwards.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import traceback
from dataclasses import fields

PREFIX = "@@collapse "


def _send(out, message: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
    out.write(PREFIX + json.dumps(message) + "\n")
    out.flush()


def _kmsg(text: str) -> None:
    try:
        with open("/dev/kmsg", "w") as kmsg:
            kmsg.write(f"collapse-conformance: {text}\n")
    except OSError:
        pass


def facts() -> dict[str, object]:
    from fixtures import thp

    return {
        "release": platform.release(),
        "proc_version": open("/proc/version").read().strip(),
        "thp": thp.read_all() if thp.available() else None,
        "cmdline": open("/proc/cmdline").read().strip(),
    }


def run_case(case: dict[str, object]) -> dict[str, object]:
    from fixtures import thp, workload

    known = {f.name for f in fields(workload.Request)}
    request = workload.Request(**{k: v for k, v in case.items() if k in known})  # type: ignore[arg-type]
    baseline = thp.read_all()
    started = time.monotonic()
    try:
        observed = workload.run(request)
    finally:
        workload_s = time.monotonic() - started
        drifted = thp.restore(baseline)
    observed["knobs_restored"] = drifted
    observed["workload_s"] = round(workload_s, 4)
    return observed


REEXEC_MARK = "COLLAPSE_AGENT_THP_DISABLED"


def _reexec_without_khugepaged() -> None:
    """Re-exec with PR_SET_THP_DISABLE so the agent's mm is never on khugepaged's list.

    khugepaged_fork() registers a child whenever its parent is registered, and khugepaged scans
    every registered mm as soon as its thread (re)starts on a write to 'enabled'. A fresh mm from
    execve() is unregistered, and the prctl (kept across fork and execve) keeps it so: workload
    owners start unregistered and with small pages, and only the call under test can collapse.
    """
    from fixtures import syscalls as sc

    if os.environ.get(REEXEC_MARK) == "1":
        return
    sc.prctl_thp_disable(1)
    os.execve(sys.executable, [sys.executable, "-u", "-m", "vm.agent"], {**os.environ, REEXEC_MARK: "1"})


def main() -> None:
    _reexec_without_khugepaged()
    out = os.fdopen(os.dup(1), "w")
    # Whatever else the workloads print goes to stderr, never into the protocol stream.
    os.dup2(2, 1)
    _send(out, {"event": "ready", "facts": facts()})
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("op") == "quit":
            _send(out, {"event": "bye"})
            return
        case_id = request.get("id", "?")
        _kmsg(f"begin {case_id}")
        started = time.monotonic()
        try:
            reply = {"ok": True, "observed": run_case(request["case"])}
        except Exception:
            reply = {"ok": False, "error": traceback.format_exc()}
        reply["guest_s"] = round(time.monotonic() - started, 4)
        _kmsg(f"end {case_id}")
        _send(out, {"event": "result", "id": case_id, **reply})


if __name__ == "__main__":
    main()
