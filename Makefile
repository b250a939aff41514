# Two commands do everything on a fresh Debian machine (as root, or with the host packages installed):
#   make matrix   the conformance matrix over the default Debian kernels (KERNELS="..." to override)
#   make check    the project's own tests: lint, unit tests, one real kernel end to end
# Plain `make` (or `make help`) lists the targets and variables and starts nothing.
# The test environments themselves are defined in tox.ini; this file only bootstraps.

.DEFAULT_GOAL := help

PYTHON ?= python3
KERNELS ?=
# auto: one worker (and VM) per kernel, bounded by cores and free memory (suites/plugin/planning.py)
WORKERS ?= auto
# make matrix over other hosts (each prepared with python -m workflows.hosts prepare HOST): ssh names,
# each running WORKERS workers (auto: one) behind an xdist proxy gateway, in this checkout's path there.
HOSTS ?=
ARGS ?=
# make kernel: a kernel tree to configure and build (default: Debian's linux-source-6.12, cached)
SRC ?=
# make series: the user's kernel tree, the series (lore message-id, mbox file or git range A..B) and
# an optional base ref (default: the series' base-commit: trailer, else the range's start, else HEAD)
TREE ?=
SERIES ?=
BASE ?=

HOST_PACKAGES := qemu-system-x86 qemu-system-arm kmod busybox-static udev debian-archive-keyring e2fsprogs
# Building test kernels (make kernel, make mutants) also needs these.
BUILD_PACKAGES := build-essential flex bison bc libelf-dev libssl-dev cpio xz-utils patch gcc-aarch64-linux-gnu
# make check also drives the HTML report in a headless browser, and applies a patch (test_mutants).
CHECK_PACKAGES := chromium chromium-driver openssh-server patch
TOX_VENV := .venv-tox
TOX := $(TOX_VENV)/bin/tox
TOX_PIN := tox==4.67.15
# The command run through make names itself `make TARGET` and its options TREE=, BASE=, ... (workflows/commands.py).
COLLAPSE_TARGET = COLLAPSE_MAKE_TARGET=$@

# What each target reads: a variable given on the command line that the target does not read would
# be silently ignored (make matrix KERNEL=... runs every default kernel), so it stops make instead.
VARIABLES := PYTHON KERNELS WORKERS HOSTS ARGS SRC TREE SERIES BASE
READS_matrix := KERNELS WORKERS HOSTS ARGS
READS_bench := KERNELS ARGS
READS_check := ARGS
READS_unit := ARGS
READS_kernel := SRC ARGS
READS_mutants := ARGS
READS_series := TREE SERIES BASE ARGS
TARGETS := help matrix host check bench unit lint kernel mutants series bootstrap host-packages build-packages check-packages clean
GIVEN := $(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(v)))
$(foreach v,$(filter-out $(VARIABLES),$(GIVEN)),$(error $(v)= is no variable of this Makefile; they are $(VARIABLES) (make help)))
$(foreach g,$(filter $(TARGETS),$(MAKECMDGOALS)),$(foreach v,$(filter-out PYTHON $(READS_$(g)),$(GIVEN)),\
  $(error make $(g) does not read $(v)=; it reads $(or $(READS_$(g)),no variable) (make help))))
# KERNELS: each debian:SUITE or an existing path, checked before anything is installed or booted.
$(foreach k,$(KERNELS),$(if $(or $(filter debian:%,$(k)),$(wildcard $(k))),,\
  $(error KERNELS: $(k) is neither debian:SUITE nor an existing kernel tree or vmlinuz)))

.PHONY: $(TARGETS)

help:
	@echo 'collapse-conformance: madvise(MADV_COLLAPSE) conformance, run in VMs on real kernels.'
	@echo ''
	@echo 'Targets (each installs what it needs first: Debian packages as root, tox in $(TOX_VENV)):'
	@echo '  make matrix    the conformance matrix over KERNELS (default: the six Debian kernels of vm/kernels.py)'
	@echo '  make host      prepare this machine to run matrix workers for another (host packages, .tox/matrix)'
	@echo '  make check     the project'"'"'s own tests: lint, unit tests, one real kernel end to end, harness, arm64 16K (CI)'
	@echo '  make unit      unit tests only (no VM)'
	@echo '  make lint      ruff and mypy --strict on the whole tree'
	@echo '  make bench     speed benchmark: the matrix against the boot-time floor'
	@echo '  make kernel    configure and build a test kernel (SRC=tree, default: Debian linux-source-6.12)'
	@echo '  make mutants   mutation testing of the suite on linux-source-6.12'
	@echo '  make series    validate a patch series: TREE=~/linux SERIES=<message-id | mbox | A..B> [BASE=ref]'
	@echo '  make clean     remove the tox environments'
	@echo '  make help      this text (also plain make)'
	@echo ''
	@echo 'Variables (only those the target reads; any other stops make):'
	@echo '  KERNELS="debian:sid /path/to/linux ..."  matrix, bench: debian:SUITE, a built tree or a vmlinuz'
	@echo '  WORKERS=auto|N   matrix: xdist workers (auto: one per kernel, bounded by cores and memory)'
	@echo '  HOSTS="h1 h2"    matrix: run the workers on these ssh hosts (WORKERS each, auto: one), not here'
	@echo '  ARGS="..."       extra options for the command (pytest options for matrix/check/unit, e.g.'
	@echo '                   ARGS="--rule C8", ARGS="-k ranges", ARGS="--collect-only")'
	@echo '  SRC, TREE, SERIES, BASE   make kernel / make series, as above;  PYTHON=python3'
	@echo ''
	@echo 'Plain `tox` runs env_list = check (as make check, without installing host packages).'
	@echo 'Exit status: make exits 0 or 2; the command'"'"'s own status is in make'"'"'s last line (Error N).'
	@echo 'Every status: docs/exit-codes.md (python -m workflows.commands).'

matrix: bootstrap
	$(TOX) -e matrix -- $(foreach k,$(KERNELS),--kernel $(k)) $(if $(HOSTS),$(foreach h,$(HOSTS),$(call via,$(h))),-n $(WORKERS)) --dist loadgroup $(ARGS)

# A host's workers run behind an xdist proxy gateway (--px) in the host's checkout at this path, with its tox env's Python.
via = --px id=$(1)//ssh=$(1)//python=$(CURDIR)/.tox/matrix/bin/python//chdir=$(CURDIR) --tx $(if $(filter-out auto,$(WORKERS)),$(WORKERS)*)popen//via=$(1)

host: bootstrap
	$(TOX) -e matrix --notest

check: bootstrap check-packages
	$(TOX) -e check -- $(ARGS)
	$(TOX) -e arm64

bench: bootstrap
	$(COLLAPSE_TARGET) $(TOX) -e bench -- $(foreach k,$(KERNELS),--kernel $(k)) $(ARGS)

unit: bootstrap check-packages
	$(TOX) -e unit -- $(ARGS)

lint: bootstrap
	$(TOX) -e lint

kernel: bootstrap build-packages
	$(COLLAPSE_TARGET) $(TOX) -e kernel -- $(if $(SRC),--src $(SRC)) $(ARGS)

mutants: bootstrap build-packages
	$(COLLAPSE_TARGET) $(TOX) -e mutants -- $(ARGS)

series: bootstrap build-packages
	$(COLLAPSE_TARGET) $(TOX) -e series -- --tree "$(TREE)" --series "$(SERIES)" $(if $(BASE),--base "$(BASE)") $(ARGS)

bootstrap: host-packages $(TOX_VENV)/.installed

host-packages: PACKAGES = $(HOST_PACKAGES)
build-packages: PACKAGES = $(BUILD_PACKAGES)
check-packages: PACKAGES = $(CHECK_PACKAGES)
host-packages build-packages check-packages:
	@missing=$$(for p in $(PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "error: missing Debian packages:" $$missing "- install them as root: apt-get install" $$missing >&2; exit 1; fi; \
		echo "installing Debian packages:" $$missing; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(TOX_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(TOX_VENV)
	$(TOX_VENV)/bin/pip install -q $(TOX_PIN)
	touch $@

clean:
	rm -rf $(TOX_VENV) .venv .tox

# An unknown target names the list; never guessed.
.DEFAULT:
	@echo "make: no target '$@'; make help lists them" >&2; exit 2
