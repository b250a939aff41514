# Two commands do everything on a fresh Debian machine (as root, or with the host packages installed):
#   make matrix   the conformance matrix over the default Debian kernels (KERNELS="..." to override)
#   make check    the project's own tests: lint, unit tests, one real kernel end to end
# The test environments themselves are defined in tox.ini; this file only bootstraps.

PYTHON ?= python3
KERNELS ?=
# auto: one worker (and VM) per kernel, bounded by cores and free memory (conftest.py)
WORKERS ?= auto
ARGS ?=

HOST_PACKAGES := qemu-system-x86 kmod busybox-static udev debian-archive-keyring
TOX_VENV := .venv-tox
TOX := $(TOX_VENV)/bin/tox
TOX_PIN := tox==4.67.15

.PHONY: matrix check bench unit lint bootstrap host-packages clean

matrix: bootstrap
	$(TOX) -e matrix -- $(foreach k,$(KERNELS),--kernel $(k)) -n $(WORKERS) --dist loadgroup $(ARGS)

check: bootstrap
	$(TOX) -e check -- $(ARGS)

bench: bootstrap
	$(TOX) -e bench -- $(foreach k,$(KERNELS),--kernel $(k)) $(ARGS)

unit: bootstrap
	$(TOX) -e unit -- $(ARGS)

lint: bootstrap
	$(TOX) -e lint

bootstrap: host-packages $(TOX_VENV)/.installed

host-packages:
	@missing=$$(for p in $(HOST_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
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
