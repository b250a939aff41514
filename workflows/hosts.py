"""Prepare another machine to run matrix workers for this one (make matrix HOSTS="h1 h2"): over ssh,
this checkout's commit at the same path there, then `make host` there (the host packages and the
tox env .tox/matrix whose Python the workers run).

    python -m workflows.hosts prepare root@h1 root@h2

A host needs, before: sshd that lets this user in with a key (no password prompt: ssh runs in batch
mode), git, make and python3 with venv (Debian: apt-get install git make python3-venv). `make host`
installs the rest as root (QEMU, busybox, ... as for make matrix). The kernels are not copied: each
host downloads them into its own cache on the first run, as a single machine does.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reports.exits import Exit, Parser
from workflows import commands

REPO = Path(__file__).resolve().parent.parent
COMMAND = commands.command("workflows.hosts")
REF = "refs/collapse/prepared"  # where the commit lands on the host: never a branch the host has checked out
TOOLS = ("git", "make", "python3")


class HostFailed(Exception):
    """A step failed on the host (ssh, git or make there): the host is not ready, nothing here changed."""


@dataclass(frozen=True)
class Remote:
    host: str  # as ssh takes it: [user@]name, or a Host of the ssh config
    ssh_config: Path | None  # ssh -F; None: the user's own (~/.ssh/config)

    def ssh(self) -> list[str]:
        return ["ssh", "-o", "BatchMode=yes", *(["-F", str(self.ssh_config)] if self.ssh_config else [])]

    def run(self, step: str, script: str) -> None:
        """SCRIPT through the host's shell; its output goes to the terminal as it comes."""
        print(f"{self.host}: {step}", flush=True)
        status = subprocess.run([*self.ssh(), self.host, script], stdin=subprocess.DEVNULL).returncode
        if status != 0:
            raise HostFailed(f"{self.host}: {step} failed (status {status})")

    def push(self, commit: str, path: Path) -> None:
        print(f"{self.host}: sending commit {commit[:12]}", flush=True)
        env = {**os.environ, "GIT_SSH_COMMAND": shlex.join(self.ssh())}
        url = f"{self.host}:{path}"
        status = subprocess.run(["git", "-C", str(REPO), "push", "-q", "--force", url, f"{commit}:{REF}"], env=env).returncode
        if status != 0:
            raise HostFailed(f"{self.host}: git push of {commit[:12]} to {path} failed (status {status})")


def head() -> str:
    """This checkout's commit; its uncommitted changes stay here (said on stderr): hosts run the commit."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout
    if dirty.strip():
        print(f"{COMMAND.name}: note: uncommitted changes here are not sent; the hosts get commit {commit[:12]}", file=sys.stderr)
    return commit


def tools_script() -> str:
    """Stops, naming what is missing, on a host without the tools the preparation itself needs."""
    checks = "; ".join(f'command -v {tool} >/dev/null || missing="$missing {tool}"' for tool in TOOLS)
    return f'missing=""; {checks}; [ -z "$missing" ] || {{ echo "missing:$missing (apt-get install git make python3-venv)" >&2; exit 1; }}'


def prepare(remote: Remote, commit: str, path: Path, bootstrap: bool) -> None:
    where = shlex.quote(str(path))
    remote.run("checking git, make and python3", tools_script())
    remote.run(f"making a repository at {path}", f"mkdir -p {where} && git -C {where} init -q")
    remote.push(commit, path)
    remote.run(f"checking out {commit[:12]}", f"git -C {where} checkout -q --detach {commit}")
    if bootstrap:
        remote.run("make host (the host packages, as root, and .tox/matrix)", f"make -C {where} host")


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog=COMMAND.name, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    cmd = sub.add_parser("prepare", help="this commit at the same path on each HOST, then make host there")
    cmd.add_argument("hosts", nargs="+", metavar="HOST", help="[user@]host, as ssh takes it")
    cmd.add_argument(
        "--path",
        type=Path,
        default=REPO,
        help=f"the checkout's path on the hosts (default: this one's, {REPO}, as make matrix HOSTS= expects)",
    )
    cmd.add_argument("--ssh-config", type=Path, default=None, help="ssh -F FILE (default: the user's ssh config)")
    cmd.add_argument("--checkout-only", action="store_true", help="skip make host (the host packages and tox env are there already)")
    args = parser.parse_args(argv)
    if not args.path.is_absolute():
        parser.error(f"--path {args.path}: give an absolute path (the workers' chdir on the host)")
    if args.ssh_config is not None and not args.ssh_config.is_file():
        parser.error(f"--ssh-config {args.ssh_config}: no such file")
    commit = head()
    try:
        for host in args.hosts:
            prepare(Remote(host, args.ssh_config), commit, args.path, bootstrap=not args.checkout_only)
    except HostFailed as failed:
        print(f"{COMMAND.name}: error: {failed}", file=sys.stderr)
        return Exit.INFRASTRUCTURE
    print(f"ready: {' '.join(args.hosts)} at {args.path}, commit {commit[:12]}")
    return Exit.CLEAN


if __name__ == "__main__":
    commands.entry(COMMAND.name, main)
