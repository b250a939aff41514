"""Kernel origins (--kernel values), identity and Debian package metadata: parsing only, no network."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from reports.exits import UserError
from vm import debian, image, kernels

BANNER = "6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)"


def fake_bzimage(path: Path, banner: str) -> Path:
    """A file with just the x86 boot-protocol header fields the resolver reads."""
    data = bytearray(0x1000)
    data[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", data, 0x20E, 0x400)
    data[0x600 : 0x600 + len(banner)] = banner.encode()
    path.write_bytes(bytes(data))
    return path


def test_banner_and_upstream_version(tmp_path: Path) -> None:
    found = image.identify(fake_bzimage(tmp_path / "vmlinuz", BANNER), tmp_path)
    assert (found.banner, found.arch.name, found.page_size) == (BANNER, "x86_64", None)
    assert kernels.upstream_version("6.1.0-56-amd64", BANNER) == (6, 1, 192)
    assert kernels.upstream_version("6.13.0-rc1", "6.13.0-rc1 (me@host) #1") == (6, 13, 0)


def test_not_a_kernel_is_one_clear_line(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello\n" * 200)
    with pytest.raises(UserError, match="is no kernel image this suite knows"):
        image.identify(bogus, tmp_path)


def test_missing_path_names_the_accepted_forms(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no such file.*debian:SUITE"):
        kernels.resolve(str(tmp_path / "nope"), tmp_path)


def test_tree_without_build_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a built kernel tree"):
        kernels.resolve(str(tmp_path), tmp_path)


def test_vmlinuz_needs_modules_above_it(tmp_path: Path) -> None:
    image = fake_bzimage(tmp_path / "vmlinuz", BANNER)
    with pytest.raises(UserError, match="lib/modules"):
        kernels.resolve(str(image), tmp_path)


def test_vmlinuz_with_modules_and_config(tmp_path: Path) -> None:
    release_dir = tmp_path / "usr" / "lib" / "modules" / "6.1.0-56-amd64"
    release_dir.mkdir(parents=True)
    (release_dir / "config").write_text("CONFIG_TRANSPARENT_HUGEPAGE=y\n# CONFIG_READ_ONLY_THP_FOR_FS is not set\n")
    kernel = kernels.resolve(str(fake_bzimage(release_dir / "vmlinuz", BANNER)), tmp_path)
    assert (kernel.release, kernel.version, kernel.label) == ("6.1.0-56-amd64", (6, 1, 192), "6.1.0-56-amd64")
    assert kernel.has("TRANSPARENT_HUGEPAGE") and not kernel.has("READ_ONLY_THP_FOR_FS")
    assert len(kernel.build_id) == 12 and kernel.name == f"6.1.0-56-amd64-{kernel.build_id}"


def test_unknown_suite_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"unknown Debian suite .buster.*bookworm"):
        kernels.resolve("debian:buster", tmp_path)


def test_config_parsing() -> None:
    config = kernels.parse_config('CONFIG_A=y\nCONFIG_B="text"\n# CONFIG_C is not set\n# comment\n')
    assert config == {"A": "y", "B": "text", "C": "n"}


def test_control_and_kernel_dependencies() -> None:
    control = debian.parse_control(
        "Package: linux-image-7.2.13+deb14-amd64\nVersion: 7.2.13-1\nDepends: dracut | initramfs-tools (>= 0.120),\n"
        " linux-base-7.2.13+deb14-amd64 (= 7.2.13-1), linux-binary-7.2.13+deb14-amd64 (= 7.2.13-1),\n"
        " linux-modules-7.2.13+deb14-amd64 (= 7.2.13-1), linux-base (>= 4.3~)\n\nPackage: other\n"
    )
    assert control["Version"] == "7.2.13-1"
    assert debian.kernel_dependencies(control["Depends"]) == [
        "linux-base-7.2.13+deb14-amd64",
        "linux-binary-7.2.13+deb14-amd64",
        "linux-modules-7.2.13+deb14-amd64",
    ]


def test_private_apt_never_touches_host_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLAPSE_DEBIAN_MIRROR", "http://mirror.invalid/debian")
    monkeypatch.setenv("COLLAPSE_DEBIAN_SECURITY_MIRROR", "http://mirror.invalid/debian-security")
    apt = debian.PrivateApt(tmp_path, "bookworm")
    apt._write_config()
    sources = apt.sources.read_text()
    assert "trusted" not in sources
    assert sources.count(f"signed-by={debian.KEYRING}") == 3
    options = " ".join(apt._options())
    assert f"Dir::Etc::SourceList={tmp_path}" in options and "Dir::Etc::SourceParts=" in options
    assert "Dir::State::status=" in options and str(tmp_path) in options


def test_tree_provenance_records_commit_describe_dirty_remote_and_patchset(tmp_path: Path) -> None:
    """Issue 13: a tree kernel's results say where it came from (KCIDB checkout fields)."""
    import subprocess

    from vm.kernels import tree_provenance

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True, capture_output=True)

    assert tree_provenance(tmp_path) is None  # not a checkout: nothing claimed
    git("init", "-q")
    (tmp_path / "Makefile").write_text("all:\n")
    git("add", "Makefile")
    git("commit", "-q", "-m", "base")
    git("tag", "v6.12")
    git("remote", "add", "origin", "https://example.org/linux.git")
    clean = tree_provenance(tmp_path)
    assert clean is not None and len(str(clean["commit"])) == 40 and clean["describe"] == "v6.12"
    assert clean["dirty"] is False and clean["remote"] == "https://example.org/linux.git" and "patchset_hash" not in clean
    (tmp_path / "Makefile").write_text("all:\n\ttrue\n")
    dirty = tree_provenance(tmp_path)
    assert dirty is not None and dirty["dirty"] is True and len(str(dirty["patchset_hash"])) == 64
