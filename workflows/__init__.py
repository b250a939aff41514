"""Workflows over kernel trees, above everything else: build a test kernel, bisect, validate a patch
series, mutation testing and the speed benchmark. Each runs the suite as a child process
(workflows.suite). Packages import one way: fixtures, reports, vm, suites, workflows."""
