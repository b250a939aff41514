"""--kernel values (kernel origins) resolved once per process, under the cache lock; only when a test needs a kernel."""

from __future__ import annotations

import pytest

from reports.exits import UserError
from suites.plugin.options import cache_dir, kernel_origins
from vm import accel, kernels
from vm.cache import CacheLock

KERNELS = pytest.StashKey[dict[str, kernels.Kernel]]()


def resolved_kernels(config: pytest.Config) -> dict[str, kernels.Kernel]:
    """Kernel name -> Kernel, in --kernel order; bad input is a usage error (one line, exit 4)."""
    if KERNELS not in config.stash:
        origins = kernel_origins(config)
        cache = cache_dir(config)
        try:
            accel.require_qemu()
            with CacheLock(cache):
                found = [kernels.resolve(origin, cache) for origin in origins]
        except UserError as err:
            raise pytest.UsageError(str(err)) from None
        for kernel in found:
            if kernel.config_source is None:
                message = f"--kernel {kernel.origin}: no kernel config found beside it; every CONFIG requirement is assumed met"
                config.issue_config_time_warning(pytest.PytestConfigWarning(message), stacklevel=2)
        config.stash[KERNELS] = {k.name: k for k in found}
    return config.stash[KERNELS]
