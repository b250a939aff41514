"""Kernels of another architecture than the host's: the debian:SUITE/FLAVOUR spelling, boot-image
headers (fabricated, a few KiB), a tree's architecture, the guest root's pure parts, and what the VM
command and agent environment become. No network, no VM."""

from __future__ import annotations

import gzip
import struct
import subprocess
from pathlib import Path

import pytest

from fixtures import arch
from fixtures.arch import ARM64, X86_64
from reports.exits import UserError
from suites.unit.test_kernels import BANNER, fake_bzimage
from vm import debian, guestroot, image, kernels, machine, vng

ARM64_BANNER = (
    b"Linux version 7.2.13+deb14-arm64 (debian-kernel@lists.debian.org) (aarch64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0,"
    b" GNU ld (GNU Binutils for Debian) 2.44) #1 SMP Debian 7.2.13-1 (2026-10-28)\n\0"
)
PAGE_FLAGS = {4096: 1, 16384: 2, 65536: 3}


def fake_image(page_size: int | None = 4096, banner: bytes = ARM64_BANNER) -> bytes:
    """An arm64 Image header (magic at 0x38, page size in the flags at 0x30) and a banner further in."""
    data = bytearray(0x2000)
    data[0x38:0x3C] = b"ARM\x64"
    struct.pack_into("<Q", data, 0x30, PAGE_FLAGS[page_size] << 1 if page_size else 0)
    data[0x1000 : 0x1000 + len(banner)] = banner
    return bytes(data)


def fake_zboot(payload: bytes, compression: bytes = b"gzip") -> bytes:
    """An EFI zboot image: "MZ", "zimg" at 4, the payload's offset and size at 8 and 12, its compression at 24."""
    head = bytearray(0x200)
    head[0:2], head[4:8] = b"MZ", b"zimg"
    struct.pack_into("<II", head, 8, len(head), len(payload))
    head[24 : 24 + len(compression)] = compression
    return bytes(head) + payload


@pytest.mark.parametrize(
    ("origin", "parsed", "label"),
    [
        ("debian:sid", ("sid", None), "sid"),
        ("debian:sid/arm64", ("sid", "arm64"), "sid-arm64"),
        ("debian:sid/arm64-16k", ("sid", "arm64-16k"), "sid-arm64-16k"),
        ("debian:trixie/arm64", ("trixie", "arm64"), "trixie-arm64"),
    ],
)
def test_debian_spelling_and_label(origin: str, parsed: tuple[str, str | None], label: str) -> None:
    assert kernels.parse_debian(origin) == parsed
    assert kernels.debian_label(*parsed) == label


@pytest.mark.parametrize("origin", ["debian:", "debian:sid/", "debian:sid/arm64/16k", "debian:/arm64"])
def test_malformed_debian_spelling_is_one_line(origin: str) -> None:
    with pytest.raises(UserError, match=r"debian:SUITE or debian:SUITE/FLAVOUR"):
        kernels.parse_debian(origin)


def test_flavour_fixes_architecture_and_package() -> None:
    assert debian.flavour_arch("arm64") is ARM64 and debian.flavour_arch("arm64-16k") is ARM64
    assert debian.flavour_arch("amd64") is X86_64 and debian.flavour_arch("cloud-amd64") is X86_64
    assert debian.META_PACKAGE.format(flavour="arm64-16k") == "linux-image-arm64-16k"
    with pytest.raises(UserError, match=r"unknown Debian kernel flavour 'arm65'.*arm64-16k"):
        debian.flavour_arch("arm65")


def test_unknown_flavour_fails_before_any_download(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown Debian kernel flavour"):
        kernels.resolve("debian:sid/sparc64", tmp_path)


def test_foreign_apt_keeps_its_own_indexes(tmp_path: Path) -> None:
    """The host's default flavour keeps the old index directory (existing caches stay valid)."""
    host = debian.PrivateApt(tmp_path, "sid")
    other = next(a for a in arch.ARCHES if a != arch.current())
    foreign = debian.PrivateApt(tmp_path, "sid", other)
    assert host.dir == tmp_path / "apt" / "sid" and foreign.dir == tmp_path / "apt" / f"sid-{other.debian}"
    assert f"APT::Architecture={other.debian}" in " ".join(foreign._options())


@pytest.mark.parametrize("page_size", [4096, 16384, 65536])
def test_plain_image_header(tmp_path: Path, page_size: int) -> None:
    (tmp_path / "Image").write_bytes(fake_image(page_size))
    found = image.identify(tmp_path / "Image", tmp_path)
    assert found.arch is ARM64 and found.page_size == page_size
    # The compiler's text is dropped: its "(Debian 14.2.0-19)" is no kernel version.
    assert found.banner == "7.2.13+deb14-arm64 (debian-kernel@lists.debian.org) #1 SMP Debian 7.2.13-1 (2026-10-28)"
    assert kernels.upstream_version(found.banner.split()[0], found.banner) == (7, 2, 13)


def test_image_without_page_size_flag(tmp_path: Path) -> None:
    (tmp_path / "Image").write_bytes(fake_image(None))
    assert image.identify(tmp_path / "Image", tmp_path).page_size is None


def test_gzip_and_zboot_images_are_unwrapped_into_the_cache(tmp_path: Path) -> None:
    (tmp_path / "vmlinuz.gz").write_bytes(gzip.compress(fake_image(16384)))
    (tmp_path / "vmlinuz.efi").write_bytes(fake_zboot(gzip.compress(fake_image(4096))))
    assert image.identify(tmp_path / "vmlinuz.gz", tmp_path).page_size == 16384
    assert image.identify(tmp_path / "vmlinuz.efi", tmp_path).arch is ARM64
    assert len(list((tmp_path / "images").glob("*.Image"))) == 2


def test_zboot_header_fields() -> None:
    assert image.zboot_payload(fake_zboot(b"abc", b"zstd")) == (0x200, 3, "zstd")
    assert image.zboot_payload(b"MZ" + bytes(100)) is None


def test_zboot_with_unknown_compression_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "vmlinuz").write_bytes(fake_zboot(b"payload", b"lz4"))
    with pytest.raises(UserError, match="compression 'lz4' is not supported"):
        image.identify(tmp_path / "vmlinuz", tmp_path)


def test_zstd_zboot(tmp_path: Path) -> None:
    try:
        payload = subprocess.run(["zstd", "-q", "-c"], input=fake_image(16384), capture_output=True, check=True).stdout
    except FileNotFoundError:
        pytest.skip("zstd is not installed")
    (tmp_path / "vmlinuz").write_bytes(fake_zboot(payload, b"zstd"))
    assert image.identify(tmp_path / "vmlinuz", tmp_path).page_size == 16384


def test_gzip_of_something_else_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.gz").write_bytes(gzip.compress(b"hello\n" * 100))
    with pytest.raises(UserError, match="is no kernel image"):
        image.identify(tmp_path / "notes.gz", tmp_path)


def test_image_without_banner_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "Image").write_bytes(fake_image(4096, banner=b"nothing here"))
    with pytest.raises(UserError, match="no 'Linux version' banner"):
        image.identify(tmp_path / "Image", tmp_path)


def fake_tree(tree: Path, config: str, image_data: bytes, image_path: str) -> Path:
    (tree / image_path).parent.mkdir(parents=True)
    (tree / image_path).write_bytes(image_data)
    (tree / ".config").write_text(config)
    (tree / "modules.order").write_text("")
    return tree


def test_arm64_tree(tmp_path: Path) -> None:
    tree = fake_tree(tmp_path / "linux", "CONFIG_ARM64=y\nCONFIG_ARM64_16K_PAGES=y\n", fake_image(16384), "arch/arm64/boot/Image")
    kernel = kernels._resolve(str(tree), tmp_path, offline=True)
    assert (kernel.arch, kernel.page_size, kernel.pmd_size, kernel.tree) == (ARM64, 16384, 32 << 20, tree.resolve())
    assert kernel.release == "7.2.13+deb14-arm64" and kernel.describe()["arch"] == "arm64"
    assert kernel.label == "7.2.13+deb14-arm64-arm64-16k"  # the 16K page size is no part of this (fabricated) release


def test_tree_arch_from_the_image_when_config_says_nothing(tmp_path: Path) -> None:
    tree = fake_tree(tmp_path / "linux", "", fake_image(4096), "arch/arm64/boot/Image")
    assert kernels.tree_arch(tree, {}) is ARM64
    assert kernels.tree_arch(tmp_path, {"X86_64": "y"}) is X86_64


def test_arm64_tree_without_image_names_it(tmp_path: Path) -> None:
    (tmp_path / ".config").write_text("CONFIG_ARM64=y\n")
    with pytest.raises(UserError, match=r"needs arch/arm64/boot/Image and modules\.order"):
        kernels.resolve(str(tmp_path), tmp_path)


def test_arm64_vmlinuz_is_recognised(tmp_path: Path) -> None:
    release_dir = tmp_path / "usr/lib/modules/7.2.13+deb14-arm64"
    release_dir.mkdir(parents=True)
    (release_dir / "config").write_text("CONFIG_ARM64=y\n")
    (release_dir / "vmlinuz").write_bytes(fake_zboot(gzip.compress(fake_image(4096))))
    kernel = kernels._resolve(str(release_dir / "vmlinuz"), tmp_path, offline=True)
    assert (kernel.arch, kernel.version, kernel.label) == (ARM64, (7, 2, 13), "7.2.13+deb14-arm64")


def test_x86_kernel_keeps_its_identity(tmp_path: Path) -> None:
    release_dir = tmp_path / "usr/lib/modules/6.1.0-56-amd64"
    release_dir.mkdir(parents=True)
    kernel = kernels.resolve(str(fake_bzimage(release_dir / "vmlinuz", BANNER)), tmp_path)
    assert (kernel.arch, kernel.page_size, kernel.root) == (X86_64, 4096, None)


@pytest.mark.parametrize(("config", "size"), [({}, 4096), ({"ARM64_16K_PAGES": "y"}, 16384), ({"ARM64_64K_PAGES": "y"}, 65536)])
def test_page_size_from_config(config: dict[str, str], size: int) -> None:
    assert arch.page_size(ARM64, config) == size
    assert arch.page_size(X86_64, config) == 4096


def test_arch_of_image_and_config() -> None:
    assert arch.of_image(fake_image()) is ARM64
    assert arch.of_image(bytes(0x100)) is None
    assert arch.of_config({"ARM64": "y"}) is ARM64 and arch.of_config({"X86_64": "y"}) is X86_64 and arch.of_config({}) is None


def foreign_kernel(tmp_path: Path, page_size: int = 4096) -> kernels.Kernel:
    other = next(a for a in arch.ARCHES if a != arch.current())
    modules = tmp_path / "pkg/usr/lib/modules/7.2.13"
    modules.mkdir(parents=True)
    (modules / "vmlinuz").write_bytes(b"")
    return kernels.Kernel(
        origin="debian:sid/x",
        label="sid-x",
        release="7.2.13",
        version=(7, 2, 13),
        build_id="0" * 12,
        image=modules / "vmlinuz",
        tree=None,
        config={},
        arch=other,
        page_size=page_size,
        root=tmp_path / "roots" / "r",
    )


def test_foreign_vng_command(tmp_path: Path) -> None:
    kernel = foreign_kernel(tmp_path)
    command = vng.command(kernel, "true", memory="2G", accel="tcg", rwdir=tmp_path / "results", repo=tmp_path / "repo")
    text = " ".join(command)
    assert f"--arch {kernel.arch.debian} --root {tmp_path}/roots/r" in text
    assert f"--rodir {vng.GUEST_REPO}={tmp_path}/repo" in text and f"--rwdir {vng.GUEST_RESULTS}={tmp_path}/results" in text
    assert f"--rodir {guestroot.MODULES}={tmp_path}/pkg/usr/lib/modules" in text
    assert f"--rodir {vng.GUEST_PYTHONPATH}/pyroute2=" in text and f"--rwdir {vng.GUEST_PYCACHE}=" in text
    assert command[command.index("--exec") + 1] == "true"
    view = vng.guest_view(kernel, tmp_path / "repo", tmp_path / "results")
    assert (view.python, view.repo, view.results) == ("python3", vng.GUEST_REPO, vng.GUEST_RESULTS)


def test_host_vng_command_is_unchanged(tmp_path: Path) -> None:
    kernel = foreign_kernel(tmp_path)
    native = kernels.Kernel(**{**kernel.__dict__, "arch": arch.current(), "root": None})
    command = vng.command(native, "true", memory="2G", accel="tcg", rwdir=tmp_path / "results", repo=tmp_path / "repo")
    assert "--arch" not in command and "--root" not in command and command[command.index("--rwdir") + 1] == str(tmp_path / "results")
    assert vng.guest_view(native, tmp_path / "repo", tmp_path / "results").pycache is None


@pytest.mark.parametrize(
    ("page_size", "requested", "memory"), [(4096, "2G", "2G"), (16384, "2G", "2G"), (65536, "2G", "8192M"), (65536, "9G", "9G")]
)
def test_memory_fits_the_thp_size(tmp_path: Path, page_size: int, requested: str, memory: str) -> None:
    assert machine.memory_for(foreign_kernel(tmp_path, page_size), requested) == memory


def test_foreign_kernel_runs_under_tcg(tmp_path: Path) -> None:
    accel, reason = machine.accel_for(foreign_kernel(tmp_path), machine.VMConfig(accel="kvm"))
    assert accel == "tcg" and "emulated" in reason


def test_root_package_choice_and_finish(tmp_path: Path) -> None:
    simulation = (
        "NOTE: simulation\nInst libc6 (2.41-12 Debian:13.8/stable [arm64])\nInst python3 (3.13.5-1 Debian:13.8/stable [arm64])\nConf x\n"
    )
    assert guestroot.dependencies(simulation) == [("libc6", "2.41-12"), ("python3", "3.13.5-1")]
    with pytest.raises(UserError, match="no packages"):
        guestroot.dependencies("")
    root = tmp_path / "root"
    (root / "usr/share/base-passwd").mkdir(parents=True)
    (root / "usr/lib/modules").mkdir(parents=True)
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    for name in ("passwd", "group"):
        (root / "usr/share/base-passwd" / f"{name}.master").write_text(f"root:{name}\n")
    guestroot.finish(root)
    assert (root / "bin").readlink() == Path("usr/bin") and (root / "etc/passwd").read_text() == "root:passwd\n"
    assert (root / "usr/lib/modules").readlink() == Path(guestroot.MODULES) and (root / "etc/fstab").exists()
    assert (root / "usr/sbin/udevd").stat().st_mode & 0o111 and (root / "usr/sbin/poweroff").is_symlink()


def test_stanzas_split_apt_cache_output() -> None:
    text = "Package: a\nVersion: 1\n\nPackage: b\nVersion: 2\nDescription: x\n y\n\n"
    assert [s["Package"] for s in guestroot.stanzas(text)] == ["a", "b"]


def test_pycache_is_per_root_and_checkout(tmp_path: Path) -> None:
    root = tmp_path / "roots" / "debian-trixie-arm64-x"
    one, two = guestroot.pycache(root, tmp_path / "a"), guestroot.pycache(root, tmp_path / "b")
    assert one != two and one.parent == tmp_path / "roots" / "debian-trixie-arm64-x.pycache"


def test_labels_of_trees_name_a_foreign_arch_and_page_size() -> None:
    host = arch.current()
    other = next(a for a in arch.ARCHES if a != host)
    assert kernels.release_label("6.12.95", host, 4096) == "6.12.95"
    assert kernels.release_label("6.12.95", other, 4096) == f"6.12.95-{other.name}"
    assert kernels.release_label("6.12.95", other, 16384) == f"6.12.95-{other.name}-16k"
    assert kernels.release_label(f"7.2.13+deb14-{other.name}-16k", other, 16384) == f"7.2.13+deb14-{other.name}-16k"


def test_reports_show_architecture_and_page_size() -> None:
    from reports.kcidb import render_kcidb
    from reports.ktap import render as render_ktap
    from reports.matrix import kernel_line
    from reports.record import Results, platform_text
    from suites.unit.test_formats import sample_data

    data = sample_data()
    kernel = data["kernels"][-1]
    kernel.update(arch="arm64", page_size=16384, hpage_pmd_size=32 << 20)
    assert platform_text(kernel) == "arm64, 16K pages"
    assert platform_text({"arch": "arm64"}) == "arm64" and platform_text({}) == "x86_64"  # records older than both
    assert "build " in kernel_line(1, kernel) and ", arm64, 16K pages)" in kernel_line(1, kernel)
    results = Results.from_json(data)
    document = render_kcidb(results, "collapse")
    assert [b["architecture"] for b in document["builds"]][-2:] == ["x86_64", "arm64"]
    assert document["builds"][-1]["misc"]["page_size"] == 16384  # type: ignore[index]
    header = next(line for line in render_ktap(results, results.kernels[-1]).splitlines() if line.startswith("# kernel "))
    assert header.endswith(", arm64, 16K pages)")


def test_foreign_tree_boots_from_its_directory_without_module_mount(tmp_path: Path) -> None:
    """vng finds the tree's arch/arm64/boot/Image itself (cwd=tree, no --run); a tree boots with what it built in."""
    kernel = foreign_kernel(tmp_path)
    tree = kernels.Kernel(**{**kernel.__dict__, "tree": tmp_path / "linux"})
    command = vng.command(tree, "true", memory="2G", accel="tcg", rwdir=tmp_path / "results", repo=tmp_path / "repo")
    assert "--run" not in command and f"{guestroot.MODULES}=" not in " ".join(command)
    assert command[command.index("--arch") + 1] == kernel.arch.debian


def test_x86_guests_have_two_numa_nodes_farther_than_reclaim_distance(tmp_path: Path) -> None:
    kernel = foreign_kernel(tmp_path)
    native = kernels.Kernel(**{**kernel.__dict__, "arch": arch.X86_64, "root": None})
    command = vng.command(native, "true", memory="2G", accel="tcg")
    text = " ".join(command)
    assert "--memory 2048M --numa 1024M --numa 1024M --numa-distance 0,1=40" in text
    assert "numa_balancing=disable" in command[command.index("--append") + 1]
    assert vng.NUMA_DISTANCE > 30  # RECLAIM_DISTANCE: a smaller distance never aborts a collapse (rule C19)


def test_arm64_guests_have_one_node(tmp_path: Path) -> None:
    command = vng.command(foreign_kernel(tmp_path), "true", memory="2G", accel="tcg", repo=tmp_path / "repo")
    assert "--numa" not in command and "numa_balancing=disable" not in command[command.index("--append") + 1]


@pytest.mark.parametrize(("text", "size"), [("2G", 2 << 30), ("1536M", 1536 << 20), ("2048", 2048 << 20), ("512k", 512 << 10)])
def test_memory_sizes_read_as_qemu_reads_them(text: str, size: int) -> None:
    assert vng.memory_bytes(text) == size


def test_numa_nodes_add_up_to_the_guest_memory(tmp_path: Path) -> None:
    native = kernels.Kernel(**{**foreign_kernel(tmp_path).__dict__, "arch": arch.X86_64, "root": None})
    assert vng.numa_options(native, "1537M") == ("1536M", ["--numa", "768M", "--numa", "768M", "--numa-distance", "0,1=40"])
