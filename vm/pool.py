"""One live VM per process: cases arrive grouped by kernel, so a kernel's VM is booted once and
shut down when the next kernel's cases begin. A kernel that fails to boot is not retried per case."""

from __future__ import annotations

from pathlib import Path

from vm import vng
from vm.kernels import Kernel
from vm.machine import GuestVM, HarnessError, VMConfig


class VMPool:
    def __init__(self, config: VMConfig, run_dir: Path) -> None:
        self.config = config
        self.run_dir = run_dir
        self.current: GuestVM | None = None
        self.broken: dict[str, HarnessError] = {}
        self.boots: dict[str, float] = {}

    def get(self, kernel: Kernel) -> GuestVM:
        if kernel.name in self.broken:
            raise self.broken[kernel.name]
        if self.current is not None and self.current.kernel.name == kernel.name and self.current.alive:
            return self.current
        self.close()
        vm = GuestVM(kernel, self.config, self.run_dir / "guests" / kernel.name)
        try:
            vm.start()
        except HarnessError as err:
            vm.close()
            self.broken[kernel.name] = HarnessError(f"kernel {kernel.name} did not boot (tried {vng.TRIES}): {err}", err.console)
            raise self.broken[kernel.name] from err
        self.boots[kernel.name] = vm.boot_s
        self.current = vm
        return vm

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None
