"""JUnit XML, one file per kernel build, for CI systems. The stored class decides the element:
a regression is a <failure>, an infrastructure error an <error>; a documentation discrepancy or a
further spec's FAIL is <skipped type="pytest.xfail"> as pytest's own junitxml writes an xfail, so
no CI counts it as a failure."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from reports.record import CaseClass, Results
from reports.results import write_per_kernel

XFAIL = (CaseClass.DOCUMENTATION, CaseClass.OTHER_SPEC)


def render(results: Results, kernel: dict[str, object]) -> str:
    cases = [c for c in results.cases if c.kernel == kernel["name"]]
    suite = ET.Element(
        "testsuite",
        name=f"collapse-conformance.{results.display_names[str(kernel['name'])]}",
        tests=str(len(cases)),
        failures=str(sum(c.case_class is CaseClass.REGRESSION for c in cases)),
        errors=str(sum(c.case_class is CaseClass.INFRASTRUCTURE for c in cases)),
        skipped=str(sum(c.case_class is CaseClass.SKIP or c.case_class in XFAIL for c in cases)),
        time=f"{sum(c.duration_s for c in cases):.3f}",
    )
    suite_props = ET.SubElement(suite, "properties")
    for key in ("release", "version", "build_id", "origin"):
        value = kernel.get(key, results.run.get(key))
        ET.SubElement(suite_props, "property", name=key, value=str(value))
    ET.SubElement(suite_props, "property", name="tool", value=results.tool)
    gaps = results.completeness.gaps()
    if gaps:  # the run did not finish: CI must not read the cases here as all there is
        ET.SubElement(suite_props, "property", name="incomplete", value="; ".join(gaps))
    for case in cases:
        element = ET.SubElement(suite, "testcase", classname=f"{case.test}.{case.rule}", name=case.case_id, time=f"{case.duration_s:.3f}")
        props = ET.SubElement(element, "properties")
        ET.SubElement(props, "property", name="class", value=str(case.case_class))
        ET.SubElement(props, "property", name="attempts", value=str(case.attempts))
        message = case.message or ""
        first = message.splitlines()[0] if message else ""
        if case.case_class is CaseClass.REGRESSION:
            ET.SubElement(element, "failure", message=first).text = message
        elif case.case_class is CaseClass.INFRASTRUCTURE:
            ET.SubElement(element, "error", message=first).text = message + "\n\n" + (case.console or "")
        elif case.case_class in XFAIL:
            ET.SubElement(element, "skipped", type="pytest.xfail", message=f"{case.case_class}: {first}")
        elif case.case_class is CaseClass.SKIP:
            ET.SubElement(element, "skipped", message=message)
        ET.SubElement(element, "system-out").text = json.dumps({"expected": case.expected, "observed": case.observed})
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def write_all(results: Results, run_dir: Path) -> list[Path]:
    return write_per_kernel(results, run_dir, "junit-{label}.xml", render)
