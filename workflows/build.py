"""Build a test kernel: fetch Debian's linux-source package (cached like the kernels), configure a tree
with virtme-ng's kconfig plus the rule book's fragment, and build it for `--kernel TREE`.

    python -m workflows.build                 # Debian's linux-source-6.12 into the cache, configured and built
    python -m workflows.build --src TREE      # configure (if needed) and build an existing tree
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from reports.exits import Exit, Parser, UserError
from vm import debian, vng
from vm.cache import cache_option, default_cache
from vm.kernels import parse_config
from workflows import commands, suite

DEFAULT_PACKAGE, DEFAULT_SUITE = "linux-source-6.12", "bookworm-backports"
FRAGMENT = Path(__file__).resolve().parent.parent / "vm" / "kconfig" / "collapse.config"
DEFAULT_CACHE = default_cache()
COMMAND = commands.command("workflows.build")
# Options a fragment asks for that a kernel may not offer at all (renamed or merged upstream);
# their absence is reported, never fatal. ZRAM_BACKEND_LZO exists from 6.12 only.
OPTIONAL = {"ZRAM_BACKEND_LZO", "HAVE_ARCH_USERFAULTFD_WP", "PTE_MARKER_UFFD_WP", "MEMFD_CREATE"}


def fetch_source(cache: Path, package: str, suite: str) -> Path:
    """Debian's PACKAGE (linux-source-X.Y) unpacked under CACHE/src; a pristine tree, never built in."""
    apt = debian.PrivateApt(cache, suite)
    if not apt.fresh():
        apt.update()
    fields = apt.candidate(package)
    if not fields:
        raise UserError(f"{package} not found in Debian {suite}; pass --package linux-source-X.Y of that suite")
    pristine = cache / "src" / f"{package}_{fields['Version']}"
    if (pristine / ".complete").exists():
        return pristine
    deb = debian.fetch_deb(apt, cache, fields)
    pristine.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=pristine.parent, prefix=".partial-") as tmp:
        debian._run_or_explain(["dpkg-deb", "-x", str(deb), tmp], pristine.parent, f"unpacking {deb.name}")
        (tarball,) = Path(tmp).glob("usr/src/linux-source-*.tar.*")
        debian._run_or_explain(["tar", "-xf", str(tarball), "-C", tmp], pristine.parent, f"unpacking {tarball.name}")
        (tree,) = [d for d in Path(tmp).glob("linux-source-*") if d.is_dir()]
        (tree / ".complete").write_text(f"{package}={fields['Version']}\n")
        tree.rename(pristine)
    return pristine


def working_tree(cache: Path, pristine: Path) -> Path:
    """A build tree beside the pristine source (hard-linked copy: cheap, and patches never touch pristine
    files because `patch` and git replace files rather than write through links)."""
    tree = cache / "build" / pristine.name
    if not (tree / "Makefile").exists():
        tree.parent.mkdir(parents=True, exist_ok=True)
        run(["cp", "-al", str(pristine), str(tree)])
        (tree / ".complete").unlink(missing_ok=True)
    return tree


def configure(tree: Path) -> None:
    """virtme-ng's minimal config plus FRAGMENT; every requested option must come out as asked."""
    run(vng.kconfig_command(FRAGMENT), cwd=tree)
    missing = unmet(parse_config((tree / ".config").read_text()), parse_config(FRAGMENT.read_text()))
    hard = [m for m in missing if m.split("=")[0] not in OPTIONAL]
    if hard:
        raise UserError(f"{tree}: the kernel config did not take {', '.join(hard)}; check their dependencies in that tree")
    for soft in missing:
        print(f"workflows.build: {soft} not offered by this tree (optional)", file=sys.stderr)


def unmet(config: dict[str, str], wanted: dict[str, str]) -> list[str]:
    return [f"CONFIG_{k}={v}" for k, v in wanted.items() if config.get(k, "n") != v]


def build(tree: Path, jobs: int) -> Path:
    """make (bzImage and modules); the image path once built."""
    run(["make", f"-j{jobs}", "-s"], cwd=tree)
    run(["make", f"-j{jobs}", "-s", "modules"], cwd=tree)
    image = tree / "arch" / "x86" / "boot" / "bzImage"
    if not image.exists():
        raise UserError(f"{tree}: make finished but left no arch/x86/boot/bzImage")
    return image


def suite_command(tree: Path, run_dir: Path, specs: list[str] | tuple[str, ...], select: str = "") -> list[str]:
    """The pytest command that runs the suite on a built TREE (workflows.mutants, workflows.bisect, workflows.series)."""
    return suite.command([tree], run_dir, specs, select, options=["-q"])


def run(command: list[str], cwd: Path | None = None) -> None:
    print("+", " ".join(command), file=sys.stderr, flush=True)
    proc = subprocess.run(command, cwd=cwd, env=vng.environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-5:]
        raise UserError(f"{' '.join(command[:3])} failed in {cwd}: " + " | ".join(tail))


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog=commands.invoked(COMMAND), description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--src", type=Path, help="an existing kernel tree to configure and build (default: Debian's source package)")
    parser.add_argument("--package", default=DEFAULT_PACKAGE, help="Debian source package to fetch when --src is not given")
    parser.add_argument("--suite", default=DEFAULT_SUITE, help="Debian suite to fetch it from")
    parser.add_argument("--cache-dir", type=cache_option, default=DEFAULT_CACHE, help="download and build cache")
    parser.add_argument("--jobs", type=commands.jobs, default=os.cpu_count() or 1, help="make -j")
    parser.add_argument("--reconfigure", action="store_true", help="regenerate .config even if the tree has one")
    args = parser.parse_args(argv)
    try:
        if args.src is None:
            tree = working_tree(args.cache_dir, fetch_source(args.cache_dir, args.package, args.suite))
        else:
            tree = args.src.expanduser().resolve()
            if not (tree / "Makefile").exists() or not (tree / "mm" / "khugepaged.c").exists():
                raise UserError(f"--src {args.src}: not a kernel source tree (no Makefile or mm/khugepaged.c)")
        if args.reconfigure or not (tree / ".config").exists():
            configure(tree)
        build(tree, args.jobs)
    except UserError as err:
        print(f"{commands.invoked(COMMAND)}: error: {err}", file=sys.stderr)
        return Exit.USAGE
    print(tree)
    return Exit.CLEAN


if __name__ == "__main__":
    commands.entry(COMMAND.name, main)
