"""A change is present or absent per kernel, decided from the kernel itself: its git history, its
Debian changelog, else its version against the mainline release and the listed stable releases;
--assume overrides all of them and says so."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vm import changelog
from vm.presence import Basis, Change, KernelFacts, decide

FORCED = Change(
    key="shmem-forced-collapse",
    commit="0123456789abcdef0123456789abcdef01234567",
    release="v7.3",
    title="mm: shmem: ignore sysfs configs for shmem forced collapse",
    stable=((6, 12, 113), (7, 2, 10)),
)

CHANGELOG = """\
linux (6.12.113-1) trixie; urgency=medium

  * New upstream stable update:
    https://www.kernel.org/pub/linux/kernel/v6.x/ChangeLog-6.12.112
    https://www.kernel.org/pub/linux/kernel/v6.x/ChangeLog-6.12.113
    - [amd64] x86/mm: something long enough to wrap onto a second
      line (CVE-2026-00001)
    - mm: shmem: ignore sysfs configs for shmem forced collapse
    - mm/khugepaged: guard is_zero_pfn() calls with pte_present()

 -- Someone <someone@debian.org>  Mon, 05 Oct 2026 10:00:00 +0200

linux (6.12.95-1) trixie-security; urgency=high

  * New upstream stable update:
    https://www.kernel.org/pub/linux/kernel/v6.x/ChangeLog-6.12.95
    - wifi: mt76: mt7921: fix a potential scan no APs

  * [x86] A Debian change that is no stable update
"""


def facts(version: tuple[int, int, int], text: str | None = None, prerelease: bool = False) -> KernelFacts:
    updates = tuple(changelog.stable_updates(text)) if text is not None else None
    return KernelFacts(version=version, prerelease=prerelease, stable_updates=updates, changelog="linux-image changelog.gz")


def test_the_changelog_parser_keeps_titles_whole_and_per_update() -> None:
    updates = changelog.stable_updates(CHANGELOG)
    assert [u.version for u in updates] == [(6, 12, 112), (6, 12, 113), (6, 12, 95)]
    titles = updates[1].titles
    assert "x86/mm: something long enough to wrap onto a second line" in titles  # arch mark and CVE dropped
    assert FORCED.title in titles and "A Debian change that is no stable update" not in updates[2].titles


def test_a_debian_kernel_has_a_backport_its_changelog_lists() -> None:
    found = decide(FORCED, facts((6, 12, 118), CHANGELOG), {})
    assert (found.present, found.basis) == (True, Basis.CHANGELOG) and "ChangeLog-6.12.112" in found.evidence


def test_a_debian_kernel_lacks_a_backport_its_changelog_does_not_list() -> None:
    found = decide(FORCED, facts((6, 12, 95), CHANGELOG.split("linux (6.12.95-1)")[1]), {})
    assert (found.present, found.basis) == (False, Basis.CHANGELOG) and "none of the 1 stable updates" in found.evidence


def test_a_debian_kernel_at_the_mainline_release_has_it_whatever_its_changelog() -> None:
    assert decide(FORCED, facts((7, 3, 4), ""), {}).present


def test_an_rc_of_the_release_is_decided_by_its_changelog_not_its_version() -> None:
    found = decide(FORCED, facts((7, 3, 0), "", prerelease=True), {})
    assert (found.present, found.basis) == (False, Basis.CHANGELOG)


@pytest.mark.parametrize(
    ("version", "present"),
    [((6, 12, 112), False), ((6, 12, 113), True), ((7, 2, 9), False), ((7, 2, 10), True), ((6, 18, 5), False), ((7, 3, 0), True)],
)
def test_without_a_changelog_the_stable_sublevel_decides(version: tuple[int, int, int], present: bool) -> None:
    found = decide(FORCED, facts(version), {})
    assert (found.present, found.basis) == (present, Basis.RELEASE)


def test_an_assumption_overrides_every_other_basis_and_is_named() -> None:
    found = decide(FORCED, facts((7, 3, 4)), {"shmem-forced-collapse": False})
    assert (found.present, found.basis, found.evidence) == (False, Basis.ASSUMED, "--assume shmem-forced-collapse=absent")


def git(tree: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(tree), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def stable_tree(tmp_path: Path) -> Path:
    """A tree whose history has v6.12 and then one stable backport citing its upstream commit."""
    tree = tmp_path / "linux"
    tree.mkdir()
    git(tree, "init", "-q")
    git(tree, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "Linux 6.12")
    git(tree, "tag", "v6.12")
    message = f"{FORCED.title}\n\ncommit {FORCED.commit} upstream.\n\nSigned-off-by: t <t@t>\n"
    git(tree, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", message)
    return tree


def test_a_tree_has_a_change_a_stable_commit_of_its_history_cites(stable_tree: Path) -> None:
    found = decide(FORCED, KernelFacts(version=(6, 12, 0), tree=stable_tree), {})
    assert (found.present, found.basis) == (True, Basis.GIT)


def test_a_tree_lacks_a_change_neither_merged_nor_cited(stable_tree: Path) -> None:
    other = Change(key="other", commit="fedcba9876543210fedcba9876543210fedcba98", release="v6.13", title="x: y")
    found = decide(other, KernelFacts(version=(6, 12, 0), tree=stable_tree), {})
    assert (found.present, found.basis) == (False, Basis.GIT)


def test_a_tree_has_a_change_whose_commit_is_an_ancestor(stable_tree: Path) -> None:
    head = git(stable_tree, "rev-parse", "HEAD~1")
    merged = Change(key="merged", commit=head, release="v6.12", title="Linux 6.12")
    assert decide(merged, KernelFacts(version=(6, 12, 0), tree=stable_tree), {}).basis is Basis.GIT


def test_a_tree_without_history_falls_back_to_its_version(tmp_path: Path) -> None:
    found = decide(FORCED, KernelFacts(version=(6, 12, 113), tree=tmp_path), {})
    assert (found.present, found.basis) == (True, Basis.RELEASE)


# ------------------------------------------------------------------ the rule book on Debian's own kernels

CHANGELOGS = Path(__file__).with_name("data") / "changelogs"  # excerpts: every stable update's line, the book's titles
DEBIAN = {
    "bookworm-6.1.192-3": (6, 1, 192),
    "bookworm-backports-6.12.95-1~bpo12+1": (6, 12, 95),
    "trixie-6.12.118-1": (6, 12, 118),
    "sid-7.2.13-1": (7, 2, 13),
    "trixie-backports-7.3.4-1~bpo13+1": (7, 3, 4),
}


def debian_kernel(name: str) -> KernelFacts:
    text = (CHANGELOGS / f"{name}.txt").read_text()
    return KernelFacts(DEBIAN[name], stable_updates=tuple(changelog.stable_updates(text)), changelog=name)


@pytest.mark.parametrize(
    ("name", "key", "present", "basis"),
    [
        # 6.12.113 carries 72c3d682c165: Debian stable's kernel has it, bookworm-backports' 6.12.95 does not
        ("trixie-6.12.118-1", "shmem-forced-collapse", True, Basis.CHANGELOG),
        ("bookworm-backports-6.12.95-1~bpo12+1", "shmem-forced-collapse", False, Basis.CHANGELOG),
        ("sid-7.2.13-1", "shmem-forced-collapse", True, Basis.CHANGELOG),  # 7.2.10
        ("trixie-backports-7.3.4-1~bpo13+1", "shmem-forced-collapse", True, Basis.RELEASE),  # mainline v7.3
        # 6.1.8 and 6.1.13 carry the v6.2 fixes: EAGAIN for a pinned page, deny before MADV_COLLAPSE
        ("bookworm-6.1.192-3", "eagain-page-count", True, Basis.CHANGELOG),
        ("bookworm-6.1.192-3", "shmem-deny-precedence", True, Basis.CHANGELOG),
        ("bookworm-6.1.192-3", "no-expand-past-end", True, Basis.CHANGELOG),
        # no stable line took these: the changelog says so
        ("bookworm-6.1.192-3", "none-pte-ebusy", False, Basis.CHANGELOG),
        ("trixie-6.12.118-1", "self-any-advice", False, Basis.CHANGELOG),
        ("trixie-6.12.118-1", "same-mm-no-cap", True, Basis.RELEASE),
    ],
)
def test_debian_kernels_have_the_changes_their_changelogs_list(name: str, key: str, present: bool, basis: Basis) -> None:
    from suites import rulebook

    found = rulebook.load().presence(debian_kernel(name))[key]
    assert (found.present, found.basis) == (present, basis), found.evidence


def test_a8_expects_a_collapse_on_6_12_118_and_einval_on_6_12_95() -> None:
    """The false regression on Debian stable: the per-size shmem knob at 'never' refuses MADV_COLLAPSE
    until 72c3d682c165, which 6.12.113 carries."""
    from suites import rulebook

    book = rulebook.load()
    params = {"memory": "shmem", "mode": "never", "per_size": "never", "caller": "madvise"}
    decided = {
        name: book.decide("per_size", params, {k: p.present for k, p in book.presence(debian_kernel(name)).items()}, "upstream")
        for name in ("bookworm-backports-6.12.95-1~bpo12+1", "trixie-6.12.118-1")
    }
    assert {name: (rule.id, rule.expect["result"]) for name, rule in decided.items() if rule} == {
        "bookworm-backports-6.12.95-1~bpo12+1": ("A8.refused", "EINVAL"),
        "trixie-6.12.118-1": ("A8.forced", "ok"),
    }


def test_pinned_pages_give_einval_before_the_6_1_13_backport_and_eagain_after() -> None:
    from suites import rulebook

    book = rulebook.load()
    params = {"memory": "anon", "mode": "madvise", "blocks": "pinned-ok-ok", "caller": "madvise"}
    results = [book.decide("blocks", params, book.at_version(v), "upstream") for v in ((6, 1, 12), (6, 1, 13))]
    assert [(r.id, r.expect["result"]) for r in results if r] == [("B7.pinned-first-einval", "EINVAL"), ("B7.pinned-first", "EAGAIN")]


def test_an_assumption_moves_the_rule_and_says_so() -> None:
    from suites import rulebook

    book = rulebook.load()
    presence = book.presence(debian_kernel("bookworm-backports-6.12.95-1~bpo12+1"), {"shmem-forced-collapse": True})
    assert presence["shmem-forced-collapse"].basis is Basis.ASSUMED
    params = {"memory": "memfd", "mode": "never", "per_size": "never", "caller": "madvise"}
    rule = book.decide("per_size", params, {k: p.present for k, p in presence.items()}, "upstream")
    assert rule is not None and rule.id == "A8.forced"


def test_a_kernel_of_a_line_nobody_searched_is_not_judged_on_that_fix() -> None:
    """6.18.y was not searched for 72c3d682c165's backport: A8's cases SKIP there, naming --assume,
    rather than expect a refusal the kernel may not give."""
    from suites import rulebook

    book = rulebook.load()
    kernel = rulebook.UnbuiltKernel("k-0", "k", (6, 18, 60), dict.fromkeys(("TRANSPARENT_HUGEPAGE", "SHMEM"), "y"))
    per_size = {c.params_id: c for c in rulebook.plan(book, "per_size", kernel, "upstream")}
    case = per_size["shmem-never-never-madvise"]
    assert case.rule is None and case.skip is not None
    assert "shmem-forced-collapse cannot be told" in case.skip and "--assume shmem-forced-collapse=present|absent" in case.skip
    assert book.presence(KernelFacts((6, 18, 60)))["madv-collapse"].present  # a feature of an older release: known


def test_an_rc_of_the_release_without_history_is_not_judged_on_its_changes() -> None:
    from suites import rulebook

    found = rulebook.load().presence(KernelFacts((7, 3, 0), prerelease=True))["shmem-forced-collapse"]
    assert (found.present, found.basis) == (None, Basis.UNKNOWN) and "-rc of v7.3" in found.evidence


def test_a_history_without_mainline_tells_nothing(tmp_path: Path) -> None:
    """A tarball committed as is: the commits are unknown objects and no v6.12 tag; the version decides."""
    tree = tmp_path / "linux"
    tree.mkdir()
    git(tree, "init", "-q")
    git(tree, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "import")
    found = decide(FORCED, KernelFacts(version=(6, 12, 113), tree=tree), {})
    assert (found.present, found.basis) == (True, Basis.RELEASE)
