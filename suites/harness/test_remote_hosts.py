"""The matrix over several hosts (make matrix HOSTS="h1 h2"): xdist's proxy gateways, one per host
(--px id=H//ssh=H//python=...//chdir=CHECKOUT), each running a worker there (--tx popen//via=H).

The test starts an sshd of its own on a free localhost port (a temporary host key, and a temporary
client key authorized through the sshd's own AuthorizedKeysFile: the user's ~/.ssh is neither read
nor written) and makes two "hosts" on this machine: two checkouts prepared by `python -m
workflows.hosts prepare` at different paths (two paths on one machine are the point here; real hosts
have the controller's path), each with its own kernel cache (COLLAPSE_CACHE, set on its gateway)
seeded from this machine's by hard links, never downloaded again, and its own accel.json.

One real run of two kernels, a few cases each, then reads what it recorded: every case of a kernel
on one host, both hosts used, the code, kernel cache and accelerator record of the host that ran
it, one results.json on the controller. No time limit here is a fixed number of seconds: like the
measuring run of test_reliability.py the run has no wall-clock limit of its own, the suite's boot
and case timeouts end it, and ssh runs in batch mode, so it never waits for a password.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reports.jsonvalues import mapping, mappings, texts
from vm import kernels
from vm.cache import CacheLock, default_cache

REPO = Path(__file__).resolve().parents[2]
SUITES = ("bookworm", "sid")
# A few cases per kernel: the availability probe and one anonymous-memory row of the grid.
SELECT = "availability or (anon and never and noadvice and noprctl)"
HOSTS = ("h1", "h2")


@dataclass(frozen=True)
class Host:
    name: str  # the Host of the test's ssh config
    checkout: Path
    cache: Path

    def xdist_args(self, ssh_config: Path) -> list[str]:
        """As make matrix HOSTS= builds them, with the test's ssh config, Python and this host's own cache."""
        proxy = f"id={self.name}//ssh={self.name}//ssh_config={ssh_config}//python={sys.executable}//chdir={self.checkout}"
        return ["--px", f"{proxy}//env:COLLAPSE_CACHE={self.cache}", "--tx", f"popen//via={self.name}"]


@dataclass(frozen=True)
class Run:
    command: list[str]
    status: int
    output: str
    run_dir: Path
    results: dict[str, object]
    wall_s: float

    def cases(self) -> list[dict[str, object]]:
        return mappings(self.results["cases"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def keypair(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


def sshd_binary() -> str:
    found = shutil.which("sshd", path="/usr/sbin:/usr/local/sbin:/usr/bin")
    if found is None:
        pytest.fail("sshd not found; install it with: apt-get install openssh-server (make check installs it)")
    return found


@pytest.fixture(scope="module")
def ssh_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An sshd of this test's own, in the foreground; the client config that reaches it as h1 and h2."""
    here = tmp_path_factory.mktemp("sshd")
    host_key, client_key = here / "host_key", here / "client_key"
    host_public = keypair(host_key)
    (here / "authorized_keys").write_text(keypair(client_key) + "\n")
    port = free_port()
    (here / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nAuthorizedKeysFile {here / 'authorized_keys'}\n"
        f"PidFile none\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "PermitRootLogin prohibit-password\nLogLevel INFO\n"
    )
    (here / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_public}\n")
    config = here / "ssh_config"
    config.write_text(
        f"Host {' '.join(HOSTS)}\n  HostName 127.0.0.1\n  Port {port}\n  User {getpass.getuser()}\n  IdentityFile {client_key}\n"
        f"  IdentitiesOnly yes\n  BatchMode yes\n  StrictHostKeyChecking yes\n  UserKnownHostsFile {here / 'known_hosts'}\n"
        "  GlobalKnownHostsFile /dev/null\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory (its service makes it at boot)
    sshd = subprocess.Popen([sshd_binary(), "-D", "-e", "-f", str(here / "sshd_config")], stderr=subprocess.PIPE, text=True)
    assert sshd.stderr is not None
    log: list[str] = []
    # Ready when it says it listens, or gone: either comes, so no clock is needed.
    for line in sshd.stderr:
        log.append(line)
        if "Server listening on" in line:
            break
    assert sshd.poll() is None, f"sshd did not start:\n{''.join(log)}"
    threading.Thread(target=lambda: log.extend(sshd.stderr or []), daemon=True).start()  # a full pipe would stall sshd
    yield config
    sshd.terminate()
    sshd.wait()


def seed_cache(cache: Path, host_cache: Path) -> None:
    """HOST_CACHE holds the run's kernels as CACHE does: their extracted trees hard-linked (read only),
    their apt state copied (a refresh there must not touch CACHE's), their records pointing at the
    copies; and CACHE's accelerator record, so the host does not probe KVM again."""
    for suite in SUITES:
        with CacheLock(cache):
            kernel = kernels.resolve(f"debian:{suite}", cache)  # already cached: what the other harness tests run
        record = json.loads((cache / "debian" / f"{suite}.json").read_text())
        source = Path(record["root"])
        root = host_cache / source.relative_to(cache)
        shutil.copytree(source, root, symlinks=True, copy_function=os.link)
        shutil.copytree(cache / "apt" / suite, host_cache / "apt" / suite, symlinks=True)
        (host_cache / "debian").mkdir(parents=True, exist_ok=True)
        (host_cache / "debian" / f"{suite}.json").write_text(json.dumps({**record, "root": str(root)}, indent=1))
        assert kernel.image.is_relative_to(source)
    shutil.copy2(cache / "accel.json", host_cache / "accel.json")


@pytest.fixture(scope="module")
def hosts(ssh_config: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Host]:
    """Two hosts, each prepared by the one-command preparation (its checkout only: the host packages
    and the Python are this machine's) and given its own kernel cache."""
    made = []
    for name in HOSTS:
        here = tmp_path_factory.mktemp(name)
        host = Host(name, here / "checkout", here / "cache")
        command = [sys.executable, "-m", "workflows.hosts", "prepare", name, "--path", str(host.checkout)]
        proc = subprocess.run([*command, "--ssh-config", str(ssh_config), "--checkout-only"], cwd=REPO, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        seed_cache(default_cache(), host.cache)
        made.append(host)
    return made


@pytest.fixture(scope="module")
def run(hosts: list[Host], ssh_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The controller here, a worker on each host. --guest-cpus 1: both 'hosts' share this machine's cores."""
    here = tmp_path_factory.mktemp("controller")
    run_dir = here / "run"
    command = [sys.executable, "-m", "pytest", "suites/test_collapse.py", "--spec", "upstream", "--run-dir", str(run_dir)]
    command += [arg for suite in SUITES for arg in ("--kernel", f"debian:{suite}")]
    command += [arg for host in hosts for arg in host.xdist_args(ssh_config)]
    command += ["--dist", "loadgroup", "--guest-cpus", "1", "--basetemp", str(here / "basetemp"), "-k", SELECT]
    started = time.monotonic()
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall_s = time.monotonic() - started
    print(f"two hosts, {len(SUITES)} kernels: {wall_s:.0f} s")
    results_file = run_dir / "results.json"
    assert results_file.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return Run(command, proc.returncode, proc.stdout + proc.stderr, run_dir, json.loads(results_file.read_text()), wall_s)


def host_of(hosts: list[Host], case: dict[str, object]) -> Host:
    checkout = mapping(case["kernel_info"]).get("checkout")
    return next(host for host in hosts if str(host.checkout) == checkout)


def test_every_planned_case_is_judged_in_one_results_json(run: Run) -> None:
    assert run.status == 0, run.output[-3000:]
    planned = mapping(mapping(run.results["run"])["planned_cases"])
    planned_ids = sorted(str(nodeid).split("@")[0] for ids in planned.values() for nodeid in texts(ids))
    assert sorted(str(c["nodeid"]).split("@")[0] for c in run.cases()) == planned_ids and len(planned) == len(SUITES)
    assert {c["verdict"] for c in run.cases()} <= {"PASS", "SKIP"}, run.output[-3000:]
    labels = {str(mapping(c["kernel_info"])["label"]) for c in run.cases() if c["verdict"] == "PASS"}
    assert labels == set(SUITES), "every kernel passes a case"


def test_each_kernel_ran_on_one_host_and_both_hosts_worked(run: Run, hosts: list[Host]) -> None:
    checkouts: dict[str, set[str]] = {}
    for case in run.cases():
        info = mapping(case["kernel_info"])
        checkouts.setdefault(str(info["label"]), set()).add(str(info.get("checkout")))
    assert all(len(where) == 1 for where in checkouts.values()), checkouts
    assert set().union(*checkouts.values()) == {str(host.checkout) for host in hosts}, checkouts


def test_each_host_ran_its_own_code_cache_and_accelerator_record(run: Run, hosts: list[Host]) -> None:
    """kernel_info.checkout is where the worker imported the plugin from (its cwd comes first on
    sys.path: tox.ini's pythonpath = .), not the controller's checkout nor the Python's editable install."""
    for case in run.cases():
        info = mapping(case["kernel_info"])
        host = host_of(hosts, case)
        assert Path(str(info["image"])).is_relative_to(host.cache), info["image"]
        assert str(host.cache / "accel.json") in str(info["accel_reason"]), info["accel_reason"]


def test_guests_files_stay_on_their_host_and_records_come_back(run: Run, hosts: list[Host]) -> None:
    run_id = str(mapping(run.results["run"])["run_id"])
    assert not (run.run_dir / "guests").exists(), "a remote worker wrote at the controller's path"
    for case in run.cases():
        host, kernel = host_of(hosts, case), str(case["kernel"])
        assert (host.checkout / "reports" / "out" / run_id / "guests" / kernel / "console.log").exists()
    for host in hosts:
        assert not list((host.checkout / "reports" / "out").glob("*/results.json*")), "only the controller writes records"


def test_resume_over_hosts_runs_none_of_the_cases_done(run: Run) -> None:
    """--resume's log is on the controller: it tells each worker which cases are done. The run is
    named by a relative path, as reports/out/RUN usually is: on a worker, in its host's checkout, that
    path holds no log (here too, where the hosts' checkouts are elsewhere on the same disk), so a worker
    that read the log itself would run every case again."""
    logged = (run.run_dir / "results.jsonl").read_text().splitlines()
    resume = os.path.relpath(run.run_dir, REPO)
    proc = subprocess.run([*run.command, "--resume", resume], cwd=REPO, capture_output=True, text=True)
    last = proc.stdout.strip().splitlines()[-1]
    assert "passed" not in last and "failed" not in last and "error" not in last, proc.stdout[-3000:]
    assert (run.run_dir / "results.jsonl").read_text().splitlines() == logged
