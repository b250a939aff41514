"""The guest's observation is typed (fixtures/observation.py) and its JSON kept the shape results.json
always stored: observations recorded by a real run at 1cc4eb8, before the types, read back into the
dataclasses, serialise to the same JSON and are judged to the same summary."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from fixtures.geometry import Geometry
from fixtures.observation import CallOutcome, Evidence, Observation, Snapshot, from_json, to_json
from suites import rulebook

# recorded before the mlock, node, folio, soft_dirty and exclusive invariants: no such facts on either side, which judge as kept
ADDED = {"mlock": "kept", "node": "majority", "folio": "sound", "soft_dirty": "sound", "exclusive": "sound"}
ADDED |= {"memcg": "sound", "file_blocks": "sound", "write": "sound"}
RECORDED = json.loads((Path(__file__).with_name("data") / "observations-1cc4eb8.json").read_text())["cases"]


@pytest.mark.parametrize("recorded", RECORDED, ids=[recorded["case_id"] for recorded in RECORDED])
def test_a_recorded_observation_reads_back_and_is_judged_as_it_was(recorded: dict[str, dict[str, object]]) -> None:
    observed = from_json(Observation, recorded["raw"])
    assert to_json(observed) == recorded["raw"]
    assert json.loads(json.dumps(rulebook.summarize(observed))) == {**recorded["observed"], **ADDED}


def observation(guards_fault: bool | None = None) -> Observation:
    snapshot = Snapshot(vma="0x200000-0x400000", pmd_kb=0, vmflags=("rd", "wr"), blocks="0")
    call = CallOutcome(ret=0, errno=None)
    return Observation(
        caller="madvise",
        evidence=Evidence(guards_fault=guards_fault),
        vmstat={},
        after=snapshot,
        data_intact=True,
        call=call,
        length=1,
        before=snapshot,
    )


def test_evidence_a_case_did_not_gather_is_left_out_and_the_rest_sits_beside_the_call() -> None:
    data = to_json(observation(guards_fault=True))
    assert isinstance(data, dict)
    assert data["guards_fault"] is True and "evidence" not in data and "same_folio" not in data and "workload_s" not in data
    assert data["call"] == {"ret": 0, "errno": None, "attempts": 1}  # errno stays, as null; no delays unless measured
    assert from_json(Observation, data) == observation(guards_fault=True)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"guards": True}, r"unknown fields \['guards'\]"),
        ({"data_intact": "yes"}, "Observation.data_intact: expected bool"),
        ({"length": True}, "Observation.length: expected int"),
        ({"call": {"errno": None}}, "CallOutcome: no ret"),
    ],
)
def test_a_malformed_observation_is_refused_naming_the_field(change: dict[str, object], message: str) -> None:
    data = to_json(observation())
    assert isinstance(data, dict)
    with pytest.raises(ValueError, match=message):
        from_json(Observation, {**data, **change})


def test_folio_invariant_judges_only_a_thp_the_call_made() -> None:
    before = Snapshot(vma="", pmd_kb=0, vmflags=(), first_pfn=100, uptodate=True, dirty=True, shared_memory=True)
    made = Snapshot(vma="", pmd_kb=2048, vmflags=(), first_pfn=512, pmd_mapped=True, uptodate=True, dirty=True, shared_memory=True)
    assert rulebook.folio_state(before, made) == "sound"
    clean = dataclasses.replace(made, dirty=False)
    assert rulebook.folio_state(before, clean) == "not dirty"
    assert rulebook.folio_state(before, dataclasses.replace(clean, shared_memory=False)) == "sound"  # anon or a regular file
    assert rulebook.folio_state(before, dataclasses.replace(clean, uptodate=False)) == "not uptodate and not dirty"
    assert rulebook.folio_state(dataclasses.replace(before, first_pfn=512), clean) == "sound"  # the THP was there before
    assert rulebook.folio_state(before, dataclasses.replace(clean, pmd_mapped=False)) == "sound"  # no THP made


def test_soft_dirty_invariant_wants_every_page_of_an_anonymous_thp_and_none_of_a_clean_page_cache_one() -> None:
    before = Snapshot(vma="", pmd_kb=0, vmflags=(), first_pfn=100)
    anon = Snapshot(vma="", pmd_kb=2048, vmflags=("rd", "wr"), first_pfn=512, pmd_mapped=True, anonymous=True, soft_dirty=512)
    assert rulebook.soft_dirty_state(before, anon, 512) == "sound"
    assert rulebook.soft_dirty_state(before, dataclasses.replace(anon, soft_dirty=0), 512) == "0 of 512 pages soft-dirty, not 512"
    shmem = dataclasses.replace(anon, anonymous=False, soft_dirty=0)
    assert rulebook.soft_dirty_state(before, shmem, 512) == "sound"
    assert rulebook.soft_dirty_state(before, dataclasses.replace(shmem, soft_dirty=512), 512) == "512 of 512 pages soft-dirty, not 0"
    assert rulebook.soft_dirty_state(before, dataclasses.replace(shmem, soft_dirty=512, vmflags=("sd",)), 512) == "sound"  # VM_SOFTDIRTY
    assert rulebook.soft_dirty_state(before, dataclasses.replace(anon, soft_dirty=None), 512) == "sound"  # no CONFIG_MEM_SOFT_DIRTY
    assert rulebook.soft_dirty_state(before, dataclasses.replace(anon, soft_dirty=0), 0) == "sound"  # recorded before
    assert rulebook.soft_dirty_state(dataclasses.replace(before, first_pfn=512), dataclasses.replace(anon, soft_dirty=0), 512) == "sound"


def test_exclusive_invariant_judges_only_a_thp_the_call_made() -> None:
    before = Snapshot(vma="", pmd_kb=0, vmflags=(), first_pfn=100, exclusive=0)
    made = Snapshot(vma="", pmd_kb=2048, vmflags=(), first_pfn=512, pmd_mapped=True, exclusive=512)
    assert rulebook.exclusive_state(before, made, 512) == "sound"
    assert rulebook.exclusive_state(before, dataclasses.replace(made, exclusive=0), 512) == "512 of 512 pages mapped more than once"
    assert rulebook.exclusive_state(before, dataclasses.replace(made, exclusive=0, pmd_mapped=False), 512) == "sound"


def test_memcg_invariant_wants_a_thp_the_call_made_charged_to_the_owners_cgroup() -> None:
    before = Snapshot(vma="", pmd_kb=0, vmflags=(), first_pfn=100, memcg=1, owner_memcg=7)
    made = Snapshot(vma="", pmd_kb=2048, vmflags=(), first_pfn=512, pmd_mapped=True, memcg=7, owner_memcg=7)
    assert rulebook.memcg_state(before, made) == "sound"
    assert rulebook.memcg_state(before, dataclasses.replace(made, memcg=1)) == "charged to cgroup 1, not the owner's 7"
    assert rulebook.memcg_state(before, dataclasses.replace(made, memcg=1, pmd_mapped=False)) == "sound"  # no THP made
    assert rulebook.memcg_state(before, dataclasses.replace(made, memcg=None, owner_memcg=None)) == "sound"  # no CONFIG_MEMCG


def test_file_blocks_invariant_wants_st_blocks_grown_by_the_holes_the_collapse_filled() -> None:
    geometry = Geometry(page=4096, block=2 << 20)
    before = Snapshot(vma="", pmd_kb=0, vmflags=("sh",), first_pfn=100, blocks="0", file_blocks=2048, file_holes=256)
    made = Snapshot(vma="", pmd_kb=2048, vmflags=("sh",), first_pfn=512, blocks="1", pmd_mapped=True, shared_memory=True, file_blocks=4096)
    assert rulebook.file_blocks_state(before, made, geometry) == "sound"
    short = dataclasses.replace(made, file_blocks=2048)
    assert rulebook.file_blocks_state(before, short, geometry) == "st_blocks grew by 0, not 2048 (256 holes)"
    assert rulebook.file_blocks_state(before, dataclasses.replace(short, shared_memory=False), geometry) == "sound"  # ext4: its own blocks
    assert rulebook.file_blocks_state(before, dataclasses.replace(short, blocks="11"), geometry) == "sound"  # other blocks charge too
    assert rulebook.file_blocks_state(before, short, None) == "sound"  # recorded before the geometry travelled


def test_write_invariant_wants_no_fault_on_a_writable_thp_and_one_on_a_read_only_one() -> None:
    before = Snapshot(vma="", pmd_kb=0, vmflags=(), first_pfn=100)
    anon = Snapshot(vma="", pmd_kb=2048, vmflags=("rd", "wr", "sd"), first_pfn=512, pmd_mapped=True, anonymous=True, soft_dirty=512)
    assert rulebook.write_state(before, anon, 0) == "sound"
    assert rulebook.write_state(before, anon, 1) == "the first write took 1 faults on a writable THP"
    shmem = dataclasses.replace(anon, vmflags=("rd", "wr", "sh", "sd"), anonymous=False, shared_memory=True)
    assert rulebook.write_state(before, shmem, 0) == "sound"
    tracked = dataclasses.replace(shmem, vmflags=("rd", "wr", "sh"))  # clear_refs 4: soft-dirty tracking wants write faults
    assert rulebook.write_state(before, tracked, 0) == "the first write took no fault on a read-only THP"
    assert rulebook.write_state(before, tracked, 1) == "sound"
    assert rulebook.write_state(before, dataclasses.replace(tracked, soft_dirty=None), 0) == "sound"  # no CONFIG_MEM_SOFT_DIRTY
    ext4 = dataclasses.replace(shmem, shared_memory=False)  # ext4 wants page_mkwrite
    assert rulebook.write_state(before, ext4, 1) == "sound"
    assert rulebook.write_state(before, dataclasses.replace(shmem, vmflags=("rd", "wr")), 1) == "sound"  # a private mapping
    assert rulebook.write_state(before, anon, None) == "sound"  # not probed


def test_uffd_protection_reads_kept_lost_or_how_many() -> None:
    assert rulebook.uffd_protection(512, 512) == "kept"
    assert rulebook.uffd_protection(512, 0) == "lost"
    assert rulebook.uffd_protection(512, 256) == "256 of 512"


def test_write_invariant_wants_a_fault_in_a_uffd_wp_armed_shared_vma() -> None:
    before = Snapshot(vma="", pmd_kb=0, vmflags=(), first_pfn=100)
    armed = Snapshot(
        vma="", pmd_kb=2048, vmflags=("rd", "wr", "sh", "sd", "uw"), first_pfn=512, pmd_mapped=True, anonymous=False, shared_memory=True
    )
    assert rulebook.write_state(before, armed, 1) == "sound"  # vma_wants_writenotify(): userfaultfd_wp(vma)
    assert rulebook.uffd_protection(0, 0) == "none protected"
