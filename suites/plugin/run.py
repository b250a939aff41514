"""The run: its directory (new, or --resume's), its header, the recorder that writes every report,
SIGTERM handled like Ctrl-C, and xdist workers pointed at the controller's directory (a worker on
another host, --tx popen//via=HOST, at the same run id under its own checkout)."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Protocol

import pytest

from reports import OUT
from reports.jsonvalues import texts
from reports.record import upgrade_run
from reports.recorder import Recorder
from suites import rulebook
from suites.plugin.guests import HOST_WORKERS
from suites.plugin.kernels import resolved_kernels
from suites.plugin.options import kernel_origins, rule_specs, rules_named
from suites.plugin.planning import DONE, case_of, done_nodeids

SUITES = Path(__file__).resolve().parents[1]
# The run directory, an attribute of the config that suites/plugin/guests.py reads (through vars()),
# and the key of xdist's workerinput that hands it to each worker.
RUN_DIR = "collapse_run_dir"
RUN_ID = "collapse_run_id"  # a worker on another host writes its guests' files under its own reports/out/RUN_ID


class Spec(Protocol):
    """What is read of execnet's XSpec: where a worker runs (via: the id of the --px gateway it runs behind)."""

    via: str | None
    ssh: str | None
    socket: str | None


class Gateway(Protocol):
    spec: Spec


class NodeManager(Protocol):
    specs: list[Spec]


class WorkerNode(Protocol):
    """What pytest_configure_node reads of xdist's WorkerController (xdist ships no type hints)."""

    workerinput: dict[str, object]
    config: pytest.Config
    gateway: Gateway
    nodemanager: NodeManager


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _worker_input(config: pytest.Config) -> dict[str, object]:
    """xdist's input to this worker (set on a worker's config only, as an attribute pytest does not declare)."""
    workerinput: dict[str, object] = vars(config)["workerinput"]
    return workerinput


def _needs_kernels(config: pytest.Config) -> bool:
    """Whether the run collects end-to-end cases: unit and harness tests need no kernel."""
    no_kernel = [SUITES / "unit", SUITES / "harness"]
    paths = [Path(arg.split("::")[0]).resolve() for arg in config.args] or [Path.cwd()]
    return any(not any(p.is_relative_to(d) for d in no_kernel) for p in paths)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "xdist_group(name): cases of one kernel share a worker and its VM")
    if _needs_kernels(config):
        resolved_kernels(config)  # bad input stops the run here, as one line, before anything starts
    if _is_worker(config):
        given = str(_worker_input(config)[RUN_DIR])
        vars(config)[RUN_DIR] = Path(given) if given else OUT / str(_worker_input(config)[RUN_ID])
        return
    direct = [spec for spec in config.getoption("tx", None) or [] if "ssh=" in spec]
    if direct:
        raise pytest.UsageError(
            f"--tx {direct[0]}: xdist copies pytest into a direct ssh worker's directory and refuses path arguments; run the "
            "host's workers behind a proxy: --px id=HOST//ssh=HOST//python=CHECKOUT/.tox/matrix/bin/python//chdir=CHECKOUT "
            "--tx popen//via=HOST (make matrix HOSTS=HOST)"
        )
    signal.signal(signal.SIGTERM, _interrupt)
    resume: Path | None = config.getoption("resume")
    if resume is not None:
        if not (resume / "results.jsonl").exists():
            raise pytest.UsageError(f"--resume {resume}: no results.jsonl there; pass a run directory such as reports/out/latest")
        run_dir = resume.resolve()
    else:
        run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"
        # Absolute: vng runs from a kernel tree's directory, and the guest's rwdir must still resolve.
        run_dir = (config.getoption("run_dir") or OUT / run_id).resolve()
    vars(config)[RUN_DIR] = run_dir
    run: dict[str, object] = {
        "run_id": run_dir.name,
        "kernel_origins": kernel_origins(config),
        "repeat": config.getoption("repeat"),
        "spec": " + ".join(rule_specs(config)),
        "specs": rule_specs(config),
        "rule_book": rulebook.load().version,
        "rules": {rule.id: rule.statement for rule in rulebook.load().rules},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(config.invocation_params.args),
        "host": os.uname().nodename,
    }
    if resume is not None and (run_dir / "results.json").exists():
        previous = upgrade_run(json.loads((run_dir / "results.json").read_text())["run"])
        run = {**previous, "resumed": [*texts(previous.get("resumed")), run["started"]]}
    config.pluginmanager.register(Recorder(run_dir, run), "collapse-recorder")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--rule: only the cases those rules decide (a kernel developer thinks in rule ids; -k sees test ids)."""
    names = config.getoption("rule")
    if not names:
        return
    wanted = set[str]().union(*(rules_named(name) for name in names))
    unwanted = [item for item in items if getattr(case_of(item), "rule", None) not in wanted]
    if unwanted:
        config.hook.pytest_deselected(items=unwanted)
        dropped = set(map(id, unwanted))
        items[:] = [item for item in items if id(item) not in dropped]


def rule_hint(keyword: str) -> str | None:
    """When -k names rule ids (-k C8), which no test id holds: how to select by rule instead."""
    ids = [word for word in re.findall(r"[A-Za-z][\w.-]*", keyword) if word not in ("and", "or", "not") and rules_named(word)]
    if not ids:
        return None
    return f"-k matches test ids, and rule ids are not in them: select by rule with {' '.join(f'--rule {i}' for i in ids)}"


def pytest_collection_finish(session: pytest.Session) -> None:
    hint = None if session.items else rule_hint(session.config.getoption("keyword") or "")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if hint and reporter is not None:
        reporter.write_line(f"hint: {hint}")


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (CI timeout, kill) ends the run like Ctrl-C: pytest still writes the reports."""
    raise KeyboardInterrupt(f"signal {signum}")


def host_of(spec: Spec) -> str | None:
    """The host a worker runs on, as its spec names it; None for this one (plain popen)."""
    return spec.via or spec.ssh or spec.socket


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: WorkerNode) -> None:
    """xdist hook: workers here write into the controller's run directory; a worker on another host
    (its records still come back through xdist) keeps its guests' files on that host, under its own
    checkout's reports/out/RUN_ID, never at a path of this machine. Each worker is told how many
    workers share its host, so its VMs share that host's cores (suites/plugin/guests.py), and, for
    --resume, which cases are done (the log is on this machine)."""
    run_dir: Path = vars(node.config)[RUN_DIR]
    host = host_of(node.gateway.spec)
    node.workerinput[RUN_DIR] = "" if host else str(run_dir)
    node.workerinput[RUN_ID] = run_dir.name
    node.workerinput[HOST_WORKERS] = sum(host_of(spec) == host for spec in node.nodemanager.specs)
    if node.config.getoption("resume"):
        node.workerinput[DONE] = done_nodeids(node.config)
