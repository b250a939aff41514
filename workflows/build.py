"""Build a test kernel: fetch Debian's linux-source package (cached like the kernels), configure a tree
with virtme-ng's kconfig plus the rule book's fragment, and build it for `--kernel TREE`.

    python -m workflows.build                 # Debian's linux-source-6.12 into the cache, configured and built
    python -m workflows.build --src TREE      # configure (if needed) and build an existing tree
    python -m workflows.build --arch arm64    # the same source cross-built for arm64 (aarch64-linux-gnu-gcc),
                                              # in its own tree beside the host's: build/<source>-arm64
    python -m workflows.build --arch arm64 --page-size 16K   # an arm64 16K-page kernel: build/<source>-arm64-16k
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fixtures import arch as arches
from fixtures.arch import Arch
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
# their absence is reported, never fatal. ZRAM_BACKEND_LZO exists from 6.12 only; READ_ONLY_THP_FOR_FS
# is gone from 7.2 (e4df0f37bd95), where every regular file may collapse; USERFAULTFD_RWP is new in 7.3.
OPTIONAL = {
    "X86_PMEM_LEGACY",  # x86 only
    "ZRAM_BACKEND_LZO",
    "HAVE_ARCH_USERFAULTFD_WP",
    "PTE_MARKER_UFFD_WP",
    "MEMFD_CREATE",
    "READ_ONLY_THP_FOR_FS",
    "USERFAULTFD_RWP",
}
DEFAULT_PAGE_KB = 4  # every architecture's default; others are fixtures.arch's Arch.page_sizes


def host() -> Arch:
    """The architecture of this machine (the one make builds for without ARCH=)."""
    try:
        return arches.current()
    except ValueError as err:
        raise UserError(f"this machine: {err}") from None


@dataclass(frozen=True)
class Target:
    """What a tree is built for: an architecture and its base page size."""

    arch: Arch
    page_kb: int = DEFAULT_PAGE_KB

    def check(self) -> Target:
        """SELF, or UserError when the architecture offers no such page size."""
        offered = (DEFAULT_PAGE_KB, *sorted(size // 1024 for size in self.arch.page_sizes.values()))
        if self.page_kb not in offered:
            sizes = ", ".join(f"{kb}K" for kb in offered)
            raise UserError(f"--page-size {self.page_kb}K: {self.arch.name} offers {sizes}; pass one of those")
        return self

    def config_items(self) -> dict[str, str]:
        """The Kconfig choices (without CONFIG_) this target adds to the fragment: a page size other than 4K."""
        return {option: "y" for option, size in self.arch.page_sizes.items() if size == self.page_kb * 1024}

    def suffix(self, native: Arch) -> str:
        """The build directory's suffix: none for the host's own 4K tree (as it always was), else -ARCH[-NK]."""
        if self.arch == native and self.page_kb == DEFAULT_PAGE_KB:
            return ""
        return f"-{self.arch.name}" + (f"-{self.page_kb}k" if self.page_kb != DEFAULT_PAGE_KB else "")


def make_args(arch: Arch, native: Arch) -> list[str]:
    """make's ARCH= and CROSS_COMPILE= for ARCH built on NATIVE: none for the host's own architecture.
    The prefix is the GNU triplet Debian's cross compilers use (gcc-aarch64-linux-gnu: aarch64-linux-gnu-gcc),
    as virtme-ng's; machines[0] is that triplet's CPU (aarch64, x86_64)."""
    if arch == native:
        return []
    return [f"ARCH={arch.name}", f"CROSS_COMPILE={arch.machines[0]}-linux-gnu-"]


def kconfig_command(target: Target, native: Arch, off: tuple[str, ...] = ()) -> list[str]:
    """`vng --kconfig` for TARGET: --arch takes virtme-ng's (Debian's) name, --configitem the page size
    and the options OFF, and CROSS_COMPILE= goes to virtme-configkernel's make as a plain argument (vng
    1.42 looks its cross compiler up as 'aarch64-linux-gnu--gcc', never finds it, and would configure
    with the host's gcc)."""
    command = vng.kconfig_command(FRAGMENT)
    if target.arch != native:
        command += ["--arch", target.arch.debian]
    for name, value in {**target.config_items(), **dict.fromkeys(off, "n")}.items():
        command += ["--configitem", f"CONFIG_{name}={value}"]
    return command + [a for a in make_args(target.arch, native) if a.startswith("CROSS_COMPILE=")]


def platforms(menu: str) -> tuple[str, ...]:
    """The options a platform menu (arch/arm64/Kconfig.platforms) declares: config ARCH_<SOC>."""
    return tuple(re.findall(r"^config (ARCH_\w+)\s*$", menu, re.M))


def config_commands(target: Target, native: Arch, tree: Path) -> list[list[str]]:
    """What configure runs in TREE: vng --kconfig; where virtme-ng's base is a full defconfig, with the
    platforms of TREE's menu off and then make mod2noconfig (every option the suite needs is =y): see
    Arch.platform_menu."""
    menu = target.arch.platform_menu
    if menu is None:
        return [kconfig_command(target, native)]
    off = platforms((tree / menu).read_text()) if (tree / menu).exists() else ()
    return [kconfig_command(target, native, off), ["make", *make_args(target.arch, native), "mod2noconfig"]]


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


def working_tree(cache: Path, pristine: Path, target: Target | None = None) -> Path:
    """A build tree beside the pristine source (hard-linked copy: cheap, and patches never touch pristine
    files because `patch` and git replace files rather than write through links); one per target, so
    an arm64 build never touches the host's tree."""
    tree = cache / "build" / (pristine.name + (target.suffix(host()) if target else ""))
    if not (tree / "Makefile").exists():
        tree.parent.mkdir(parents=True, exist_ok=True)
        run(["cp", "-al", str(pristine), str(tree)])
        (tree / ".complete").unlink(missing_ok=True)
    return tree


def configure(tree: Path, target: Target | None = None) -> None:
    """virtme-ng's minimal config plus FRAGMENT (and TARGET's page size) for TARGET (default: this
    machine's architecture); every requested option must come out as asked."""
    native = host()
    target = target or Target(native)
    for command in config_commands(target, native, tree):
        run(command, cwd=tree)
    missing = unmet(parse_config((tree / ".config").read_text()), {**parse_config(FRAGMENT.read_text()), **target.config_items()})
    hard = [m for m in missing if m.split("=")[0].removeprefix("CONFIG_") not in OPTIONAL]
    if hard:
        raise UserError(f"{tree}: the kernel config did not take {', '.join(hard)}; check their dependencies in that tree")
    for soft in missing:
        print(f"workflows.build: {soft} not offered by this tree (optional)", file=sys.stderr)


def unmet(config: dict[str, str], wanted: dict[str, str]) -> list[str]:
    return [f"CONFIG_{k}={v}" for k, v in wanted.items() if config.get(k, "n") != v]


def build(tree: Path, jobs: int) -> Path:
    """make the boot image and the modules for the architecture the tree is configured for (cross
    compiling when it is not this machine's); the image path once built."""
    native = host()
    arch = tree_arch(tree, native)
    cross = make_args(arch, native)
    run(["make", *cross, f"-j{jobs}", "-s", Path(arch.image).name], cwd=tree)
    run(["make", *cross, f"-j{jobs}", "-s", "modules"], cwd=tree)
    image = tree / arch.image
    if not image.exists():
        raise UserError(f"{tree}: make finished but left no {arch.image}")
    return image


def tree_arch(tree: Path, native: Arch) -> Arch:
    """The architecture TREE's .config is for (NATIVE when it names none we know, as plain make would)."""
    config = tree / ".config"
    return (arches.of_config(parse_config(config.read_text())) if config.exists() else None) or native


def check_tree_target(tree: Path, target: Target) -> None:
    """UserError when TREE is already configured for another architecture or page size: switching
    in place would mix two architectures' objects; --reconfigure after `make mrproper` is the way."""
    config = parse_config((tree / ".config").read_text())
    arch = arches.of_config(config)
    if arch is None:
        return
    page_kb = arches.page_size(arch, config) // 1024
    if (arch, page_kb) != (target.arch, target.page_kb):
        raise UserError(
            f"{tree} is configured for {arch.name} {page_kb}K, not {target.arch.name} {target.page_kb}K; "
            "pass a matching --arch/--page-size, or run make mrproper there and pass --reconfigure"
        )


def arch_option(text: str) -> Arch:
    """argparse type of --arch: a name fixtures.arch knows (kernel, Debian or uname -m spelling)."""
    try:
        return arches.named(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def page_size_option(text: str) -> int:
    """argparse type of --page-size: 4K, 16K or 64K (the K optional), in KiB."""
    number = text.strip().upper().removesuffix("K")
    if not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a page size such as 4K, 16K or 64K")
    return int(number)


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """--arch and --page-size, shared with workflows.mutants."""
    parser.add_argument("--arch", type=arch_option, default=None, help="architecture to build for (default: this machine's)")
    parser.add_argument("--page-size", type=page_size_option, default=DEFAULT_PAGE_KB, help="base page size in KiB (16K, 64K: arm64)")


def target_of(args: argparse.Namespace) -> Target:
    """The Target the parsed --arch and --page-size name; UserError for a size the architecture lacks."""
    return Target(args.arch or host(), args.page_size).check()


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
    add_target_options(parser)
    args = parser.parse_args(argv)
    try:
        target = target_of(args)
        if args.src is None:
            tree = working_tree(args.cache_dir, fetch_source(args.cache_dir, args.package, args.suite), target)
        else:
            tree = args.src.expanduser().resolve()
            if not (tree / "Makefile").exists() or not (tree / "mm" / "khugepaged.c").exists():
                raise UserError(f"--src {args.src}: not a kernel source tree (no Makefile or mm/khugepaged.c)")
        if args.reconfigure or not (tree / ".config").exists():
            configure(tree, target)
        else:
            check_tree_target(tree, target)
        build(tree, args.jobs)
    except UserError as err:
        print(f"{commands.invoked(COMMAND)}: error: {err}", file=sys.stderr)
        return Exit.USAGE
    print(tree)
    return Exit.CLEAN


if __name__ == "__main__":
    commands.entry(COMMAND.name, main)
