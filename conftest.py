"""The suite's pytest entry: the plugin that does the work lives in suites/plugin/, one module per
job (options, run, kernels, planning, guests, verdicts). Nothing imports from this file."""

# In import order (each only imports those above it), so pytest can rewrite every module's asserts.
pytest_plugins = [
    "suites.plugin.options",
    "suites.plugin.kernels",
    "suites.plugin.planning",
    "suites.plugin.verdicts",
    "suites.plugin.guests",
    "suites.plugin.run",
]
