"""Bad input and a shared cache: one clear line for each mistake, and no cache entry used half-made.

None of these runs boots a VM, and none has a time limit: like the unit tests they end or fail on
evidence (an exit status, a waiter on the lock), never on a number of seconds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reports.exits import UserError
from suites import rulebook
from vm import debian, kernels
from vm.cache import CacheLock
from workflows.suite import command as suite_command

REPO = Path(__file__).resolve().parents[2]
CASES_PER_KERNEL = sum(len(test.grid()) for test in rulebook.load().tests.values())


def suite(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = suite_command(specs=["upstream"], options=args)
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def bookworm(tmp_path_factory: pytest.TempPathFactory) -> kernels.Kernel:
    """bookworm in the default cache (downloaded once)."""
    from vm.cache import default_cache

    return kernels.resolve("debian:bookworm", default_cache())


def test_tampered_deb_is_detected_and_fetched_again(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    first = debian.resolve(tmp_path, "bookworm")
    (deb,) = (tmp_path / "debs").glob("linux-image-*.deb")
    good = debian.sha256(deb)
    with deb.open("ab") as f:
        f.write(b"tampered")
    shutil.rmtree(first.root)  # the extracted entry must be rebuilt from the .deb
    again = debian.resolve(tmp_path, "bookworm")
    assert "does not match the signed index (SHA256); fetching it again" in capfd.readouterr().err
    assert debian.sha256(deb) == good and Path(again.root, ".complete").exists()


def test_no_space_for_the_cache_is_one_clear_line(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(small)], check=True)
    try:
        with pytest.raises(UserError, match=r"^no space .*free space or pass --cache-dir$"):
            debian.resolve(small, "bookworm")
        assert not list((small / "kernels").glob("*/*")), "a half-written kernel entry was left behind"
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_qemu_missing_is_one_clear_line(bookworm: kernels.Kernel) -> None:
    bindir = Path(sys.executable).parent
    proc = suite("--kernel", str(bookworm.image), env={**os.environ, "PATH": str(bindir)})
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "ERROR: qemu-system-x86_64 not found; install it with: apt-get install qemu-system-x86" in proc.stderr


@pytest.mark.parametrize(
    "origin,message",
    [
        ("/nonexistent/vmlinuz", "no such file or directory; pass debian:SUITE[/FLAVOUR], a kernel tree or a vmlinuz"),
        ("debian:buster", "unknown Debian suite 'buster'"),
        ("README.md", "is no kernel image this suite knows"),
        ("debian:sid/sparc", "unknown Debian kernel flavour 'sparc'; known: amd64"),
        ("", "--kernel needs a value: debian:SUITE[/FLAVOUR], a built kernel tree or a vmlinuz"),
    ],
)
def test_bad_kernel_origin_is_one_clear_line(origin: str, message: str) -> None:
    proc = suite("--kernel", origin, "--collect-only", "-q")
    assert proc.returncode == 4 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def vmlinuz_root(root: Path, bookworm: kernels.Kernel) -> Path:
    """bookworm's image as a bare vmlinuz under ROOT/boot, its modules under ROOT/lib/modules, and
    no config beside it; the image path."""
    release_dir = root / "lib" / "modules" / bookworm.release
    release_dir.parent.mkdir(parents=True)
    release_dir.symlink_to(bookworm.image.parent.parent / "lib" / "modules" / bookworm.release)
    (root / "boot").mkdir()
    image = root / "boot" / bookworm.image.name
    image.symlink_to(bookworm.image)
    return image


def test_kernel_without_thp_skips_every_case_with_the_reason(tmp_path: Path, bookworm: kernels.Kernel) -> None:
    image = vmlinuz_root(tmp_path, bookworm)
    config = (bookworm.image.parent / f"config-{bookworm.release}").read_text()
    (tmp_path / "boot" / f"config-{bookworm.release}").write_text(
        config.replace("CONFIG_TRANSPARENT_HUGEPAGE=y", "# CONFIG_TRANSPARENT_HUGEPAGE is not set")
    )
    proc = suite("--kernel", str(image), "--run-dir", str(tmp_path / "run"), "-rs")
    assert proc.returncode == 0, proc.stdout
    assert f"{CASES_PER_KERNEL} skipped" in proc.stdout, proc.stdout
    reasons = re.findall(r"^SKIPPED \[(\d+)\] suites/test_collapse.py: (.*)$", proc.stdout, re.M)
    assert sum(int(n) for n, _ in reasons) == CASES_PER_KERNEL, proc.stdout
    assert all(reason.startswith("kernel lacks CONFIG_TRANSPARENT_HUGEPAGE") for _, reason in reasons), reasons


def test_a_vmlinuz_without_a_config_is_said_not_assumed_silently(tmp_path: Path, bookworm: kernels.Kernel) -> None:
    """Issue 13.6: with no config beside the image, every CONFIG requirement is assumed met: say so."""
    image = vmlinuz_root(tmp_path, bookworm)
    proc = suite("--kernel", str(image), "--collect-only", "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"--kernel {image}: no kernel config found beside it; every CONFIG requirement is assumed met" in proc.stdout + proc.stderr


def blocked_on(path: Path, pid: int) -> bool:
    """Whether the kernel lists PID as waiting for a lock on PATH (a "->" line of /proc/locks)."""
    inode = f":{path.stat().st_ino} "
    return any(line.split()[1:2] == ["->"] and line.split()[5] == str(pid) and inode in line for line in Path("/proc/locks").open())


def test_a_second_run_waits_for_the_cache_lock(tmp_path: Path, bookworm: kernels.Kernel) -> None:
    cache = tmp_path / "cache"
    lock = CacheLock(cache)
    with lock:
        waiting = subprocess.Popen(
            suite_command([bookworm.image], specs=["upstream"], options=["--collect-only", "-q", "--cache-dir", str(cache)]),
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        # Evidence, not a guess at how long start-up takes: the kernel shows the run queued on the lock, or it ended.
        while waiting.poll() is None and not blocked_on(lock.path, waiting.pid):
            time.sleep(0.1)
        assert waiting.poll() is None, "the second run did not wait for the cache lock"
    out, _ = waiting.communicate()
    assert waiting.returncode == 0 and f"{CASES_PER_KERNEL} tests collected" in out, out


@pytest.mark.parametrize(
    "option,message",
    [
        ("--repeat=0", "'0' is not a whole number >= 1"),
        ("--repeat=x", "'x' is not a whole number >= 1"),
        ("--guest-memory=banana", "'banana' is not a memory size such as 2G or 1536M"),
        ("--guest-memory=64M", "is below 512M"),
    ],
)
def test_bad_option_is_refused_before_anything_runs(option: str, message: str) -> None:
    """Issue 13.6: options that used to be accepted silently (--repeat 0 ran no case)."""
    proc = suite(option, "--collect-only", "-q")
    assert proc.returncode == 4 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
