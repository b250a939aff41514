"""workflows.build's pure parts: the make and vng arguments per architecture, the build directory per
target, the architecture a .config is for, and the options' refusals (one line, exit 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.arch import ARM64, X86_64, Arch
from reports.exits import Exit, UserError
from workflows import build, mutants

ARM64_4K = build.Target(ARM64)
ARM64_16K = build.Target(ARM64, 16)


def test_the_hosts_own_architecture_builds_with_plain_make() -> None:
    assert build.make_args(X86_64, X86_64) == []
    assert build.make_args(ARM64, ARM64) == []


def test_arm64_on_x86_cross_compiles_with_debians_aarch64_gcc() -> None:
    assert build.make_args(ARM64, X86_64) == ["ARCH=arm64", "CROSS_COMPILE=aarch64-linux-gnu-"]
    assert build.make_args(X86_64, ARM64) == ["ARCH=x86_64", "CROSS_COMPILE=x86_64-linux-gnu-"]


def test_the_hosts_kconfig_command_is_the_one_it_always_was() -> None:
    assert build.kconfig_command(build.Target(X86_64), X86_64) == ["vng", "--kconfig", "--config", str(build.FRAGMENT)]


def test_arm64_kconfig_names_vngs_arch_and_hands_the_cross_compiler_to_configkernel() -> None:
    command = build.kconfig_command(ARM64_4K, X86_64)
    assert command == ["vng", "--kconfig", "--config", str(build.FRAGMENT), "--arch", "arm64", "CROSS_COMPILE=aarch64-linux-gnu-"]


MENU = """menu "Platform selection"

config ARCH_ACTIONS
\tbool "Actions Semi Platforms"

if ARCH_BCM
config ARCH_BCM2835
\tbool "Broadcom BCM2835 family"
endif

config ARCH_NPCM
\tbool "Nuvoton NPCM Architecture"
endmenu # "Platform selection"
"""


def test_a_platform_menu_names_its_platforms() -> None:
    assert build.platforms(MENU) == ("ARCH_ACTIONS", "ARCH_BCM2835", "ARCH_NPCM")


def test_arm64s_defconfig_platforms_and_modules_are_dropped_and_the_hosts_config_is_left_alone(tmp_path: Path) -> None:
    x86 = build.Target(X86_64)
    assert build.config_commands(x86, X86_64, tmp_path) == [build.kconfig_command(x86, X86_64)]
    (tmp_path / "arch" / "arm64").mkdir(parents=True)
    (tmp_path / "arch" / "arm64" / "Kconfig.platforms").write_text(MENU)
    kconfig, mod2no = build.config_commands(ARM64_4K, X86_64, tmp_path)
    items = [kconfig[i + 1] for i, arg in enumerate(kconfig) if arg == "--configitem"]
    assert items == ["CONFIG_ARCH_ACTIONS=n", "CONFIG_ARCH_BCM2835=n", "CONFIG_ARCH_NPCM=n"]
    assert kconfig[-1] == "CROSS_COMPILE=aarch64-linux-gnu-"
    assert mod2no == ["make", "ARCH=arm64", "CROSS_COMPILE=aarch64-linux-gnu-", "mod2noconfig"]


def test_an_optional_option_a_tree_lacks_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(build, "host", lambda: X86_64)
    monkeypatch.setattr(build, "run", lambda command, cwd=None: None)
    monkeypatch.setattr(build, "FRAGMENT", tmp_path / "fragment.config")
    build.FRAGMENT.write_text("CONFIG_ZRAM_BACKEND_LZO=y\nCONFIG_ZRAM=y\n")
    (tmp_path / ".config").write_text("CONFIG_ZRAM=y\n")
    build.configure(tmp_path)
    assert "CONFIG_ZRAM_BACKEND_LZO=y not offered by this tree (optional)" in capsys.readouterr().err
    (tmp_path / ".config").write_text("CONFIG_ZRAM_BACKEND_LZO=y\n")
    with pytest.raises(UserError, match="did not take CONFIG_ZRAM=y"):
        build.configure(tmp_path)


def test_a_16k_target_adds_the_page_size_choice() -> None:
    assert ARM64_16K.config_items() == {"ARM64_16K_PAGES": "y"}
    assert build.Target(ARM64, 64).config_items() == {"ARM64_64K_PAGES": "y"}
    assert ARM64_4K.config_items() == {}
    command = build.kconfig_command(ARM64_16K, X86_64)
    assert command[command.index("--configitem") + 1] == "CONFIG_ARM64_16K_PAGES=y"


def test_the_fragment_is_the_one_in_the_repository() -> None:
    assert build.FRAGMENT.is_file()


@pytest.mark.parametrize(
    ("target", "native", "suffix"),
    [
        (build.Target(X86_64), X86_64, ""),
        (ARM64_4K, X86_64, "-arm64"),
        (ARM64_16K, X86_64, "-arm64-16k"),
        (build.Target(ARM64, 64), X86_64, "-arm64-64k"),
        (ARM64_4K, ARM64, ""),
        (build.Target(X86_64), ARM64, "-x86_64"),
    ],
)
def test_each_target_has_its_own_build_directory(target: build.Target, native: Arch, suffix: str) -> None:
    assert target.suffix(native) == suffix


def test_the_host_tree_keeps_its_name_and_arm64_gets_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "host", lambda: X86_64)
    monkeypatch.setattr(build, "run", lambda command, cwd=None: Path(command[-1]).mkdir(parents=True))
    pristine = tmp_path / "src" / "linux-source-6.12_6.12.95-1"
    assert build.working_tree(tmp_path, pristine) == tmp_path / "build" / pristine.name
    assert build.working_tree(tmp_path, pristine, ARM64_4K) == tmp_path / "build" / f"{pristine.name}-arm64"


def test_a_page_size_the_architecture_lacks_is_refused_with_the_choices() -> None:
    assert ARM64_16K.check() is ARM64_16K
    with pytest.raises(UserError, match="x86_64 offers 4K; pass one of those"):
        build.Target(X86_64, 16).check()
    with pytest.raises(UserError, match="arm64 offers 4K, 16K, 64K"):
        build.Target(ARM64, 8).check()


def test_a_tree_configured_for_another_target_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".config").write_text("CONFIG_ARM64=y\nCONFIG_ARM64_16K_PAGES=y\n")
    build.check_tree_target(tmp_path, ARM64_16K)
    with pytest.raises(UserError, match="configured for arm64 16K, not arm64 4K; pass a matching --arch/--page-size"):
        build.check_tree_target(tmp_path, ARM64_4K)
    with pytest.raises(UserError, match="not x86_64 4K"):
        build.check_tree_target(tmp_path, build.Target(X86_64))


def test_the_tree_arch_decides_what_make_builds(tmp_path: Path) -> None:
    assert build.tree_arch(tmp_path, X86_64) == X86_64  # no .config yet: plain make's
    (tmp_path / ".config").write_text("CONFIG_ARM64=y\n")
    assert build.tree_arch(tmp_path, X86_64) == ARM64


@pytest.mark.parametrize(("text", "kb"), [("16K", 16), ("16k", 16), ("64", 64), ("4K", 4)])
def test_page_sizes_are_read_in_kib(text: str, kb: int) -> None:
    assert build.page_size_option(text) == kb


@pytest.mark.parametrize("module", [build, mutants])
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--arch", "sparc"], "argument --arch: unknown architecture 'sparc'; known: x86_64, arm64"),
        (["--page-size", "huge"], "argument --page-size: 'huge' is not a page size such as 4K, 16K or 64K"),
    ],
)
def test_bad_target_options_exit_4_in_one_line(module: object, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        module.main(argv)  # type: ignore[attr-defined]
    assert stop.value.code == Exit.USAGE
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
