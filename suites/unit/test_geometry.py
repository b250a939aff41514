"""The fixtures' geometry for 4K, 16K and 64K pages: every size and offset a fixture computes (ranges,
holes, guard pages, block kinds, census thresholds, swap, ramdisk, memcg and dirtying sizes) is
evaluated from a Geometry, without a guest, and placed relative to the block; on 4K pages it is what
the suite always used. And no fixture, plugin or judge code holds a constant 2 MiB or 512."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

from fixtures import blocks, memcg, memory, pagestate, pressure, steps, workload
from fixtures.geometry import Geometry, NotApplicable, case_bytes, check_fits
from fixtures.memory import Region, block_pattern, expected_block, hugetlb_pages, placed_start
from fixtures.observation import CallOutcome, Census, Observation, Snapshot, from_json, to_json
from suites import rulebook

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
G4K = Geometry(page=4 * KIB, block=2 * MIB, hugetlb_page=2 * MIB)
G16K = Geometry(page=16 * KIB, block=32 * MIB, hugetlb_page=32 * MIB)
G64K = Geometry(page=64 * KIB, block=512 * MIB, hugetlb_page=512 * MIB)
GEOMETRIES = [G4K, G16K, G64K]
IDS = ["4K", "16K", "64K"]
# The pattern of a block is built in memory: 512 MiB with 64K pages is too much for a unit test.
SMALL = [G4K, G16K]
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("geometry,pages,order", [(G4K, 512, 9), (G16K, 2048, 11), (G64K, 8192, 13)], ids=IDS)
def test_pages_per_block_and_order_and_khugepaged_defaults(geometry: Geometry, pages: int, order: int) -> None:
    assert geometry.pages_per_block == pages and geometry.order == order
    assert geometry.default_max_ptes_none == pages - 1
    assert (geometry.default_max_ptes_swap, geometry.default_max_ptes_shared) == (pages // 8, pages // 2)
    assert steps.max_ptes_none("511", geometry) == str(pages - 1) and steps.max_ptes_none("0", geometry) == "0"
    assert geometry.per_size_dir == f"hugepages-{geometry.block // KIB}kB"


def test_a_geometry_that_is_no_page_and_pmd_is_refused() -> None:
    for page, block in [(3000, 2 * MIB), (4 * KIB, 4 * KIB), (4 * KIB, 2 * MIB + 1)]:
        with pytest.raises(ValueError, match="not a page/PMD geometry"):
            Geometry(page=page, block=block)


def whole_blocks(geometry: Geometry, offset: int, length: int) -> tuple[int, int]:
    """madvise_collapse()'s hstart and hend, in blocks from A: the whole blocks a range covers."""
    hstart = geometry.align_up(offset)
    hend = (offset + length) & ~(geometry.block - 1)
    return hstart // geometry.block, hend // geometry.block


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_ranges_are_placed_relative_to_the_two_blocks(geometry: Geometry) -> None:
    spans = steps.ranges(geometry)
    assert tuple(spans) == steps.RANGE_NAMES
    region = geometry.blocks(steps.Range.blocks)
    for name, (offset, length) in spans.items():
        assert 0 <= offset and offset + max(length, 0) <= region, name
    assert whole_blocks(geometry, *spans["both-blocks"]) == (0, 2)
    assert spans["unaligned-start"][0] % geometry.page and sum(spans["unaligned-start"]) == region
    assert spans["len-0"][1] == 0 and spans["negative-len"][1] == -geometry.page
    inside, touch, cross = spans["inside-one-block"], spans["touch-one-boundary"], spans["cross-one-boundary"]
    assert sum(inside) < geometry.block and inside[0] > 0  # strictly inside block 0: hstart > hend
    assert whole_blocks(geometry, *inside) == (1, 0)
    assert touch[0] == 0 and whole_blocks(geometry, *touch) == (0, 0)  # touches A, holds no block
    assert cross[0] < geometry.block < sum(cross) and whole_blocks(geometry, *cross) == (1, 1)
    assert whole_blocks(geometry, *spans["second-block-only"]) == (1, 2)
    assert all(value % geometry.page == 0 for name, span in spans.items() if name != "unaligned-start" for value in span)


def test_ranges_on_4k_are_the_ones_the_suite_always_used() -> None:
    k4, m1, m2 = 4 * KIB, MIB, 2 * MIB
    assert steps.ranges(G4K) == {
        "both-blocks": (0, 2 * m2),
        "unaligned-start": (1, 2 * m2 - 1),
        "len-0": (0, 0),
        "negative-len": (0, -k4),
        "inside-one-block": (k4, m1),
        "touch-one-boundary": (0, m1),
        "cross-one-boundary": (m2 - k4, 2 * k4),
        "second-block-only": (k4, 2 * m2 - k4),
    }


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_guard_pages_spread_over_the_block_first_and_last_included(geometry: Geometry) -> None:
    pages = steps.guard_pages(geometry)
    assert len(pages) == steps.GUARD_MARKERS
    assert min(pages) == 0 and max(pages) == geometry.block - geometry.page
    assert all(offset % geometry.page == 0 and offset < geometry.block for offset in pages)
    gaps = sorted(b - a for a, b in zip(sorted(pages), sorted(pages)[1:], strict=False))
    assert gaps[-1] - gaps[0] <= geometry.page  # evenly spread


def test_guard_pages_on_4k_are_the_ones_the_suite_always_used() -> None:
    assert steps.guard_pages(G4K) == frozenset(page * 4 * KIB for page in (0, 73, 146, 219, 292, 365, 438, 511))


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_a_sparse_block_drops_the_second_half_of_its_own_block(geometry: Geometry) -> None:
    for index in range(blocks.BLOCKS):
        dropped = blocks.sparse_dropped(geometry, index)
        assert len(dropped) == geometry.pages_per_block // 2
        assert min(dropped) == geometry.blocks(index) + geometry.half
        assert max(dropped) == geometry.blocks(index + 1) - geometry.page
        assert all(offset % geometry.page == 0 for offset in dropped)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_block_kinds_are_told_apart_by_fractions_of_the_block(geometry: Geometry) -> None:
    n = geometry.pages_per_block
    full, wp = Census(present=n), Census(present=n, uffd_wp=n)
    sparse, swapped = Census(present=n // 2), Census(present=n // 2, swapped=n // 4)
    evidence = blocks.EVIDENCE
    assert evidence["ok"](full, geometry) and evidence["pinned"](full, geometry) and not evidence["ok"](wp, geometry)
    assert evidence["wp"](wp, geometry) and not evidence["wp"](full, geometry)
    assert evidence["sparse"](sparse, geometry) and not evidence["sparse"](full, geometry)
    assert evidence["swapped"](swapped, geometry) and not evidence["swapped"](Census(swapped=n // 4 - 1), geometry)
    assert not evidence["ok"](Census(present=512 if n != 512 else 511), geometry)  # a 4K count is no whole block elsewhere


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_page_states_are_told_by_fractions_of_the_block(geometry: Geometry) -> None:
    n, evidence = geometry.pages_per_block, pagestate.EVIDENCE
    assert evidence["swapped"](Census(swapped=n // 4), geometry) and not evidence["swapped"](Census(swapped=n // 4 - 1), geometry)
    assert evidence["shared-fork"](Census(shared=n - pagestate.REWRITTEN_PAGES), geometry)
    assert not evidence["shared-fork"](Census(shared=n - pagestate.REWRITTEN_PAGES - 1), geometry)
    assert evidence["shared-fork-all"](Census(shared=n), geometry) and not evidence["shared-fork-all"](Census(shared=n - 1), geometry)
    assert evidence["lazyfree"](Census(lazyfree=n - pagestate.LAZYFREE_BATCH), geometry)
    assert not evidence["lazyfree"](Census(lazyfree=n - pagestate.LAZYFREE_BATCH - 1), geometry)


def test_thresholds_on_4k_are_the_ones_the_suite_always_used() -> None:
    assert pagestate.swapped_enough(G4K) == 128 and G4K.pages_per_block // 2 == 256
    assert pagestate.swap_bytes(G4K) == 256 * MIB and memory.ramdisk_bytes(G4K) == 128 * MIB
    assert memory.tmpfs_bytes(G4K) == 256 * MIB and memcg.headroom(G4K) == MIB
    assert memory.dirty_bytes(G4K, 2 * GIB) == 64 * MIB
    assert steps.per_size_knob("anon", G4K) == "hugepages-2048kB/enabled"
    assert steps.per_size_knob("memfd", G4K) == "hugepages-2048kB/shmem_enabled"


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_set_up_sizes_scale_with_the_block(geometry: Geometry) -> None:
    assert pagestate.swap_bytes(geometry) >= geometry.blocks(2)
    assert memory.ramdisk_bytes(geometry) > geometry.blocks(2) and memory.tmpfs_bytes(geometry) >= geometry.blocks(2)
    assert 0 < memcg.headroom(geometry) < geometry.block  # less room than one THP
    for available in (GIB, 2 * GIB, 16 * GIB):
        dirty = memory.dirty_bytes(geometry, available)
        assert dirty % geometry.block == 0 and geometry.block <= dirty <= geometry.blocks(memory.DIRTY_BLOCKS)
        assert dirty <= max(geometry.block, available // 4)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_the_swap_header_names_the_last_page_and_ends_with_the_signature(geometry: Geometry) -> None:
    header = pagestate.swap_header(geometry)
    assert len(header) == geometry.page and header.endswith(b"SWAPSPACE2")
    assert int.from_bytes(header[1028:1032], "little") == pagestate.swap_bytes(geometry) // geometry.page - 1


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_regions_start_on_a_block_past_a_guard_page_and_hugetlb_counts_its_pages(geometry: Geometry) -> None:
    for base in (0x7F0000000000, 0x7F0000000000 - geometry.page, 0x7F0000000000 + 3 * geometry.page):
        start = placed_start(geometry, base, 0)
        assert start % geometry.block == 0 and base + geometry.page <= start < base + geometry.page + geometry.block
        assert placed_start(geometry, base, geometry.page) == start + geometry.page  # anon-unaligned
    assert hugetlb_pages(geometry, geometry.blocks(3)) == 3
    assert hugetlb_pages(Geometry(geometry.page, geometry.block), geometry.blocks(2)) == 2  # no hugetlbfs: the PMD size


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_layouts_and_the_region_are_whole_blocks(geometry: Geometry) -> None:
    request = steps.Request.of({"layout": "hole-middle"})
    chosen = request.steps()
    assert workload.region_length(chosen, geometry) == geometry.blocks(steps.Layout.blocks)
    for index, _ in steps.LAYOUTS.values():
        assert 0 <= geometry.blocks(index) < workload.region_length(chosen, geometry)
    assert workload.region_length(steps.Request.of({"blocks": "ok-ok-ok"}).steps(), geometry) == geometry.blocks(blocks.BLOCKS)
    assert workload.region_length(steps.Request.of({"range": "len-0"}).steps(), geometry) == geometry.blocks(2)


@pytest.mark.parametrize("geometry", SMALL, ids=IDS[: len(SMALL)])
def test_each_populate_value_writes_its_part_of_the_block(geometry: Geometry) -> None:
    data, half = block_pattern(geometry), geometry.half
    assert len(data) == geometry.block and data[: geometry.page] != data[geometry.page : 2 * geometry.page]
    assert expected_block(geometry, "full") == data == expected_block(geometry, "read")
    assert expected_block(geometry, "half") == data[:half] + bytes(half)
    assert expected_block(geometry, "second-half") == bytes(half) + data[half:]
    assert expected_block(geometry, "one-page") == data[: geometry.page] + bytes(geometry.block - geometry.page)
    assert expected_block(geometry, "untouched") == bytes(geometry.block)


@pytest.mark.parametrize("geometry", SMALL, ids=IDS[: len(SMALL)])
def test_pages_dropped_on_purpose_read_as_zero_in_their_own_block_only(geometry: Geometry) -> None:
    page, data = geometry.page, block_pattern(geometry)
    region = Region(start=0, length=geometry.blocks(3), zeroed=frozenset({geometry.block + 5 * page}), geometry=geometry)
    assert region._dropped(0, data) == data
    second = region._dropped(geometry.block, data)
    assert second[5 * page : 6 * page] == bytes(page)
    assert second[: 5 * page] == data[: 5 * page] and second[6 * page :] == data[6 * page :]


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_buddyinfo_counts_free_blocks_of_the_block_order_or_more(geometry: Geometry) -> None:
    columns = [0] * (geometry.order + 3)
    columns[geometry.order - 1], columns[geometry.order], columns[geometry.order + 2] = 100, 2, 1
    line = " ".join(map(str, columns))
    buddyinfo = f"Node 0, zone      DMA {line}\nNode 0, zone   Normal {line}\n"
    assert pressure.huge_blocks_in(buddyinfo, geometry) == 3  # DMA left out, order - 1 not counted
    other = f"Node 1, zone   Normal {line}\n"
    assert pressure.huge_blocks_in(buddyinfo + other, geometry, frozenset({0})) == 3  # a node without CPUs left out
    assert pressure.huge_blocks_in(buddyinfo + other, geometry) == 6


@pytest.mark.parametrize("geometry,fits", [(G4K, True), (G16K, True), (G64K, False)], ids=IDS)
def test_a_case_that_does_not_fit_the_guest_is_not_applicable(geometry: Geometry, fits: bool) -> None:
    available = 1800 * MIB  # a 2 GiB guest
    assert case_bytes(geometry, 3) == geometry.blocks(3 + 4)
    if fits:
        check_fits(geometry, 3, available)
    else:
        with pytest.raises(NotApplicable, match=r"^not applicable: a case of 3 block\(s\) needs about 3584 MiB with 64K pages"):
            check_fits(geometry, 3, available)


def test_the_geometry_travels_with_the_observation() -> None:
    snapshot = Snapshot(vma="0x0-0x0", pmd_kb=0, vmflags=())
    observed = Observation(
        caller="madvise", vmstat={}, after=snapshot, data_intact=True, call=CallOutcome(0, None), length=1, before=snapshot, geometry=G16K
    )
    data = to_json(observed)
    assert isinstance(data, dict) and data["geometry"] == {"page": 16 * KIB, "block": 32 * MIB, "hugetlb_page": 32 * MIB}
    assert from_json(Observation, data).geometry == G16K
    with pytest.raises(ValueError, match="not a page/PMD geometry"):
        from_json(Observation, {**data, "geometry": {"page": 4 * KIB, "block": 3 * KIB}})


def test_the_page_cache_rule_holds_only_for_64k_kernels() -> None:
    """P64.pagecache depends on the page size: it decides shmem cases of a kernel whose config says
    64K pages, and no case of any other kernel (the x86 plan stays as it was)."""
    book = rulebook.load()
    base = {"TRANSPARENT_HUGEPAGE": "y", "SHMEM": "y"}
    for config, decided in [({**base, "ARM64_64K_PAGES": "y"}, True), ({**base, "ARM64_16K_PAGES": "y"}, False), (base, False)]:
        kernel = rulebook.UnbuiltKernel("k-0", "k", (6, 12, 0), config)
        cases = rulebook.plan(book, "memory", kernel, "upstream")
        assert all((case.rule == "P64.pagecache") == decided for case in cases), config


# ------------------------------------------------------------------ no constant 2 MiB or 512

SCANNED = [*sorted((ROOT / "fixtures").glob("*.py")), *sorted((ROOT / "suites" / "plugin").glob("*.py")), ROOT / "suites" / "rulebook.py"]
# 512, 511, 2 MiB as a number, as a shift or product, in hex, and in words: in code, not in comments or docstrings.
CONSTANT = re.compile(
    r"(?<![\w.])51[12](?![\w.])|(?<![\w.])2097152(?![\w.])|0x200000\b|\b2\s*<<\s*20\b|\b1\s*<<\s*21\b"
    r"|\b2\s*\*\s*1024\s*\*\s*1024\b|\b2\s?MiB\b|\b2048\s?kB\b|\bHPAGE\b"
)
# (file, the line's text): why it is no block size.
ALLOWED: dict[tuple[str, str], str] = {
    ("suites/plugin/options.py", "if memory_bytes(text) < 512 << 20:"): "the guest RAM floor (--guest-memory), not a block",
    (
        "suites/plugin/options.py",
        'raise argparse.ArgumentTypeError(f"{text!r} is below 512M; the guest needs room for 2 MiB THPs and the agent")',
    ): "the guest RAM floor's message; harness tests match its words",
    ("fixtures/steps.py", 'Dimension("max_ptes_none", _optional("0", "511"), MaxPtesNone),'): (
        "a case-id word of the rule book (the 4K default); the step writes the geometry's pages per block - 1"
    ),
    ("fixtures/steps.py", 'return str(geometry.default_max_ptes_none) if value == "511" else value'): "the same word, translated",
    ("suites/rulebook.py", "ST_BLOCK = 512"): "stat(2)'s st_blocks unit, whatever the page or block size",
}


def docstring_lines(source: str) -> set[int]:
    """Line numbers of every docstring (module, class, function) of SOURCE."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def code_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text without its comment) of each line of PATH that is code, not docstring."""
    source = path.read_text()
    comments = {
        tok.start[0]: tok.start[1] for tok in tokenize.generate_tokens(io.StringIO(source).readline) if tok.type == tokenize.COMMENT
    }
    skipped = docstring_lines(source)
    return [
        (number, line[: comments.get(number, len(line))].strip())
        for number, line in enumerate(source.splitlines(), start=1)
        if number not in skipped
    ]


def test_no_fixture_plugin_or_judge_code_holds_a_constant_block_size() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {text}"
        for path in SCANNED
        for number, text in code_lines(path)
        if CONSTANT.search(text) and (str(path.relative_to(ROOT)), text) not in ALLOWED
    ]
    assert not found, "a constant block size (take it from fixtures.geometry):\n" + "\n".join(found)


def test_the_allow_list_names_lines_that_exist() -> None:
    present = {(str(path.relative_to(ROOT)), text) for path in SCANNED for _, text in code_lines(path)}
    assert set(ALLOWED) <= present, set(ALLOWED) - present


def test_the_scan_finds_what_it_bans(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text(
        '"""512 in a docstring is prose."""\nA = 2 << 20  # 2 MiB\nB = 512\nC = "hugepages-2048kB"\nD = 1024  # 512 in a comment\n'
    )
    assert [number for number, text in code_lines(planted) if CONSTANT.search(text)] == [2, 3, 4]


def test_rule_statements_speak_in_blocks() -> None:
    """Statements, descriptions and skip reasons name blocks and pages, not the 4K sizes; only a rule
    whose outcome depends on the page size names page sizes, and says so."""
    book = rulebook.load()
    texts = [(rule.id, rule.statement) for rule in book.rules] + [(rule.id, rule.skip or "") for rule in book.rules]
    texts += [(name, test.description) for name, test in book.tests.items()]
    sized = re.compile(r"\b2\s?MiB\b|\b512\b|\b2048kB\b|\b4\s?KiB\b|\b1\s?MiB\b|A\+[0-9]")
    assert not [(where, text) for where, text in texts if sized.search(text)]
    assert all("depends on the page size" in rule.statement for rule in book.rules if re.search(r"\b(16|64)K pages\b", rule.statement))
