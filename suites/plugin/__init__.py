"""The suite's pytest plugin, one module per job; conftest.py only names them (pytest_plugins).

options    the command-line options, checked when parsed, and their accessors
run        the run directory, --resume, SIGTERM, the recorder that writes every report
kernels    --kernel values (kernel origins) resolved once per process, under the cache lock
planning   cases from the rule book per kernel, their order, the number of xdist workers
guests     the VM pool and the per-case guest fixture
verdicts   each case's record: built at setup, its verdict and class set once in the report hook
"""
