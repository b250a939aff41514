"""The CI pipeline files (.gitlab-ci.yml, .github/workflows/matrix.yml): each shards the default kernels
and validates offline against its schema (check-jsonschema's vendored GitLab CI and GitHub workflow
schemas) and, for GitHub, actionlint."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vm.kernels import DEFAULT_KERNELS

REPO = Path(__file__).resolve().parents[2]
GITLAB = REPO / ".gitlab-ci.yml"
GITHUB = REPO / ".github" / "workflows" / "matrix.yml"


def document(path: Path) -> dict[str, object]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), f"{path}: not a YAML mapping"
    return loaded


def mapping(value: object, where: str) -> dict[str, object]:
    assert isinstance(value, dict), f"{where}: not a mapping"
    return value


def gitlab_kernels() -> list[object]:
    shard = mapping(document(GITLAB)["shard"], "shard")
    axes = mapping(shard["parallel"], "shard.parallel")["matrix"]
    assert isinstance(axes, list) and len(axes) == 1, "shard.parallel.matrix: one axis, KERNEL"
    kernels = mapping(axes[0], "shard.parallel.matrix[0]")["KERNEL"]
    assert isinstance(kernels, list)
    return kernels


def github_kernels() -> list[object]:
    shard = mapping(mapping(document(GITHUB)["jobs"], "jobs")["shard"], "jobs.shard")
    kernels = mapping(mapping(shard["strategy"], "strategy")["matrix"], "strategy.matrix")["kernel"]
    assert isinstance(kernels, list)
    return kernels


def tool(name: str) -> str:
    """A pinned command-line tool of requirements.txt: beside this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is missing: pip install -r requirements.txt"
    return found


def passes(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}"


@pytest.mark.parametrize("pipeline", ["gitlab", "github"])
def test_the_shards_are_the_default_kernels(pipeline: str) -> None:
    kernels = {"gitlab": gitlab_kernels, "github": github_kernels}[pipeline]()
    assert kernels == list(DEFAULT_KERNELS)


def test_each_default_kernel_has_its_own_shard_directory() -> None:
    # A shard's run lands in shards/SUITE (the part after "debian:"): two kernels of one name would overwrite each other.
    suites = [kernel.rpartition(":")[2] for kernel in DEFAULT_KERNELS]
    assert len(set(suites)) == len(suites)


@pytest.mark.parametrize(("path", "schema"), [(GITLAB, "vendor.gitlab-ci"), (GITHUB, "vendor.github-workflows")], ids=["gitlab", "github"])
def test_the_pipeline_matches_its_schema(path: Path, schema: str) -> None:
    passes([tool("check-jsonschema"), "--builtin-schema", schema, str(path)])


def test_the_workflow_passes_actionlint() -> None:
    # Without shellcheck and pyflakes, whether or not this machine has them: the same verdict everywhere.
    passes([tool("actionlint"), "-shellcheck=", "-pyflakes=", str(GITHUB)])
