"""Built base trees for patch series, kept under the cache and never in the user's checkout.

Per (repository, base commit, kernel config), CACHE/series/<repo>/<base12>-<config12>/ holds two
git worktrees of the user's repository: base/, checked out at the base and built once, and
patched/, a copy of the built base where each series is applied (git am) and built. The base is
never rebuilt for another series; in patched/, git rewrites only the files that differ from what
was last built there, so make rebuilds only what the previous and the new series touch.

Seeding: a worktree's first build is a copy (cp -a) of an already built tree at the same commit
with the same .config, instead of a full build. The source of the copy is the user's TREE when it
is built, at the base commit and clean, and always base/ for patched/. That is safe because
kbuild decides what to rebuild from mtimes and the .cmd files alone: cp -a keeps every object
newer than its source, the sources are byte-identical (git reports both trees clean at the same
commit), and an in-tree build records paths relative to the tree, so the copy's commands are
unchanged. The make that follows then only relinks what the new checkout's git metadata changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from reports.exits import UserError
from vm.kernels import parse_config, tree_arch
from workflows import build
from workflows.patchset import Patch, does_not_apply, git

IDENTITY = ["-c", "user.name=collapse-conformance", "-c", "user.email=collapse-conformance@localhost"]


class How(Enum):
    BUILT = "built from scratch"
    SEEDED = "seeded from TREE (cp -a, then make)"
    REUSED = "reused as built"


@dataclass(frozen=True)
class Trees:
    base: Path  # worktree at the base commit, built
    patched: Path  # worktree where series are applied and built incrementally
    commit: str
    config: str  # sha256 of the .config both are built with
    how: How  # how base/ came to be built
    copied: bool  # patched/ was made now, as a copy of base/


def config_of(user_tree: Path) -> tuple[str, bytes | None]:
    """The config key: TREE's own .config, or (without one) workflows.build's fragment, which configure() applies."""
    own = user_tree / ".config"
    if own.exists():
        data = own.read_bytes()
        return hashlib.sha256(data).hexdigest(), data
    return hashlib.sha256(b"vng --kconfig + " + build.FRAGMENT.read_bytes()).hexdigest(), None


def slot(cache: Path, user_tree: Path, commit: str, config: str) -> Path:
    common = Path(git(user_tree, "rev-parse", "--path-format=absolute", "--git-common-dir"))
    repo = hashlib.sha256(str(common).encode()).hexdigest()[:12]
    return cache / "series" / f"{user_tree.name}-{repo}" / f"{commit[:12]}-{config[:12]}"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One series run per base slot at a time (a second one waits)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def prepare(user_tree: Path, commit: str, cache: Path, jobs: int) -> Trees:
    """The built base and the patched worktree for COMMIT (call under locked(slot(...)))."""
    config, own = config_of(user_tree)
    where = slot(cache, user_tree, commit, config)
    base, patched, stamp = where / "base", where / "patched", where / "state.json"
    state = json.loads(stamp.read_text()) if stamp.exists() else {}
    if state.get("built") == commit and _valid(base) and git(base, "rev-parse", "HEAD") == commit and not _dirty(base):
        how = How.REUSED
    else:
        for tree in (base, patched):
            _discard(user_tree, tree)
        if own is not None and seedable(user_tree, commit):
            _copy(user_tree, base, commit)
            how = How.SEEDED
        else:
            git(user_tree, "worktree", "add", "--detach", str(base), commit)
            if own is None:
                build.configure(base)
            else:
                (base / ".config").write_bytes(own)
                build.run(["make", "olddefconfig"], cwd=base)
            how = How.BUILT
        stamp.write_text(json.dumps({"commit": commit, "config": config, "built": None}))
        build.build(base, jobs)
        stamp.write_text(json.dumps({"commit": commit, "config": config, "built": commit}))
    copied = not _valid(patched)
    if copied:
        _discard(user_tree, patched)
        _copy(base, patched, commit)
    return Trees(base, patched, commit, config, how, copied)


def _copy(built: Path, where: Path, commit: str) -> None:
    """WHERE: a worktree at COMMIT whose files, objects included, are a cp -a of the BUILT tree."""
    source = built.resolve()
    git(source, "worktree", "add", "--no-checkout", "--detach", str(where), commit)
    for entry in source.iterdir():
        if entry.name != ".git":
            subprocess.run(["cp", "-a", str(entry), str(where)], check=True)
    git(where, "reset", "-q", commit)  # the index from the commit; no file is rewritten
    if _dirty(where):
        raise UserError(f"{where}: the copy of {built} differs from {commit[:12]}; delete {where.parent} and run again")


def seedable(user_tree: Path, commit: str) -> bool:
    """TREE is built, at COMMIT, with no change to any tracked or unignored file."""
    config = user_tree / ".config"
    arch = tree_arch(user_tree, parse_config(config.read_text()) if config.exists() else {})
    built = arch is not None and (user_tree / arch.image).exists() and (user_tree / "modules.order").exists()
    return built and git(user_tree, "rev-parse", "HEAD") == commit and not _dirty(user_tree)


def checkout(where: Path, commit: str, base: str = "") -> None:
    """Put the worktree at COMMIT; only files that differ are rewritten, so make rebuilds only those.
    When COMMIT changes a Kconfig file since BASE, `make olddefconfig`: make alone would ask on stdin."""
    git(where, "checkout", "-q", "--detach", "--force", commit)
    touched = git(where, "diff", "--name-only", base, commit) if base and base != commit else ""
    if any(Path(name).name.startswith("Kconfig") for name in touched.splitlines()):
        build.run(["make", "olddefconfig"], cwd=where)


def apply(where: Path, base: str, mbox: Path, patches: tuple[Patch, ...]) -> list[str]:
    """git am the series on BASE; the commit of each patch, in order. A patch that does not apply is
    one line naming it."""
    _abort_am(where)  # left by an interrupted run
    checkout(where, base)
    # An earlier series' olddefconfig may have changed patched/'s .config: start from the base's,
    # written anew (a fresh mtime) only when it differs, so kbuild re-syncs the config then.
    base_config = (where.parent / "base" / ".config").read_bytes()
    if (where / ".config").read_bytes() != base_config:
        (where / ".config").write_bytes(base_config)
    proc = subprocess.run(["git", "-C", str(where), *IDENTITY, "am", "--quiet", str(mbox)], capture_output=True, text=True)
    if proc.returncode != 0:
        _abort_am(where)
        failed = next((line for line in proc.stdout.splitlines() + proc.stderr.splitlines() if line.startswith("Patch failed at")), "")
        number = int(failed.split()[3]) if failed else 0
        patch = next((p for p in patches if p.index == number), None)
        raise does_not_apply(patch.name if patch else "a patch", base, proc.stderr)
    commits = git(where, "rev-list", "--reverse", f"{base}..HEAD").split()
    if len(commits) != len(patches):
        raise UserError(f"git am made {len(commits)} commits of {len(patches)} patches; check the mbox holds each patch once")
    return commits


def _abort_am(where: Path) -> None:
    subprocess.run(["git", "-C", str(where), "am", "--abort"], capture_output=True)


def _valid(where: Path) -> bool:
    head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True)
    return (where / ".git").is_file() and head.returncode == 0


def _dirty(tree: Path) -> bool:
    return bool(git(tree, "status", "--porcelain", "--untracked-files=normal"))


def _discard(user_tree: Path, where: Path) -> None:
    if where.exists():
        subprocess.run(["git", "-C", str(user_tree), "worktree", "remove", "--force", str(where)], capture_output=True)
        shutil.rmtree(where, ignore_errors=True)
    subprocess.run(["git", "-C", str(user_tree), "worktree", "prune"], capture_output=True)
    where.parent.mkdir(parents=True, exist_ok=True)
