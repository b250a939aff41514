"""JUnit XML, one file per kernel build, for CI systems."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path


def render(document: dict[str, object], kernel: dict[str, object]) -> str:
    cases = [c for c in document["cases"] if c["kernel"] == kernel["name"]]  # type: ignore[union-attr, index]
    suite = ET.Element(
        "testsuite",
        name=f"collapse-conformance.{kernel['label']}",
        tests=str(len(cases)),
        failures=str(sum(c["verdict"] == "FAIL" for c in cases)),
        errors=str(sum(c["verdict"] == "ERROR" for c in cases)),
        skipped=str(sum(c["verdict"] == "SKIP" for c in cases)),
        time=f"{sum(float(c['duration_s']) for c in cases):.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for key in ("release", "version", "build_id", "spec"):
        value = kernel.get(key, document["run"].get(key))  # type: ignore[union-attr]
        ET.SubElement(props, "property", name=key, value=str(value))
    for case in cases:
        element = ET.SubElement(
            suite,
            "testcase",
            classname=f"{case['test']}.{case['rule']}",
            name=str(case["case_id"]),
            time=f"{float(case['duration_s']):.3f}",
        )
        message = str(case.get("message") or "")
        if case["verdict"] == "FAIL":
            ET.SubElement(element, "failure", message=message.splitlines()[0] if message else "").text = message
        elif case["verdict"] == "ERROR":
            ET.SubElement(element, "error", message=message.splitlines()[0] if message else "").text = (
                message + "\n\n" + str(case.get("console") or "")
            )
        elif case["verdict"] == "SKIP":
            ET.SubElement(element, "skipped", message=message)
        ET.SubElement(element, "system-out").text = json.dumps({"expected": case.get("expected"), "observed": case.get("observed")})
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def write_all(document: dict[str, object], run_dir: Path) -> list[Path]:
    paths = []
    for kernel in document["kernels"]:  # type: ignore[union-attr]
        path = run_dir / f"junit-{kernel['label']}.xml"
        path.write_text(render(document, kernel))
        paths.append(path)
    return paths
