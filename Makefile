# Two commands do everything on a fresh Debian machine (as root, or with the host packages installed):
#   make matrix   the conformance matrix over the default Debian kernels (KERNELS="..." to override)
#   make check    the project's own tests: lint, unit tests, one real kernel end to end
# The test environments themselves are defined in tox.ini; this file only bootstraps.

PYTHON ?= python3
KERNELS ?=
# auto: one worker (and VM) per kernel, bounded by cores and free memory (suites/plugin/planning.py)
WORKERS ?= auto
ARGS ?=
# make kernel: a kernel tree to configure and build (default: Debian's linux-source-6.12, cached)
SRC ?=
# make series: the user's kernel tree, the series (lore message-id, mbox file or git range A..B) and
# an optional base ref (default: the series' base-commit: trailer, else the range's start, else HEAD)
TREE ?=
SERIES ?=
BASE ?=

HOST_PACKAGES := qemu-system-x86 kmod busybox-static udev debian-archive-keyring e2fsprogs
# Building test kernels (make kernel, make mutants) also needs these.
BUILD_PACKAGES := build-essential flex bison bc libelf-dev libssl-dev cpio xz-utils patch
# make check also drives the HTML report in a headless browser.
CHECK_PACKAGES := chromium chromium-driver
TOX_VENV := .venv-tox
TOX := $(TOX_VENV)/bin/tox
TOX_PIN := tox==4.67.15

.PHONY: matrix check bench unit lint kernel mutants series bootstrap host-packages build-packages check-packages clean

matrix: bootstrap
	$(TOX) -e matrix -- $(foreach k,$(KERNELS),--kernel $(k)) -n $(WORKERS) --dist loadgroup $(ARGS)

check: bootstrap check-packages
	$(TOX) -e check -- $(ARGS)

bench: bootstrap
	$(TOX) -e bench -- $(foreach k,$(KERNELS),--kernel $(k)) $(ARGS)

unit: bootstrap check-packages
	$(TOX) -e unit -- $(ARGS)

lint: bootstrap
	$(TOX) -e lint

kernel: bootstrap build-packages
	$(TOX) -e kernel -- $(if $(SRC),--src $(SRC)) $(ARGS)

mutants: bootstrap build-packages
	$(TOX) -e mutants -- $(ARGS)

series: bootstrap build-packages
	$(TOX) -e series -- --tree "$(TREE)" --series "$(SERIES)" $(if $(BASE),--base "$(BASE)") $(ARGS)

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
