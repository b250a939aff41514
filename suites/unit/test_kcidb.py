"""KCIDB submission (python -m reports kcidb-submit): the report built from real recorded results
(suites/unit/data/results-sample.json) validates against kcidb-io's latest schema with every test path
in KCIDB v5's pattern, ids carry the origin asked for, and sending goes to a local HTTP endpoint that
answers as kcidb-ng's kcidb-restd-rs does."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kcidb_io import schema

from reports import __main__ as cli
from reports import kcidb_submit
from reports.exits import Exit, UserError
from reports.kcidb import ORIGIN, case_path, path_segment, render_kcidb, report_origin
from reports.record import Results

SAMPLE = Path(__file__).with_name("data") / "results-sample.json"
PATH_RE = schema.LATEST.test_path_re
# The variables kcidb-submit reads, and a proxy's, which would not reach the endpoint on 127.0.0.1.
CLEAN_ENV = ("KCIDB_ORIGIN", "KCIDB_TOKEN", "KCIDB_REST", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")


def sample() -> Results:
    return Results.from_json(json.loads(SAMPLE.read_text()))


@pytest.fixture(autouse=True)
def no_kcidb_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CLEAN_ENV:
        monkeypatch.delenv(name, raising=False)


def jwt(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.signature"


# ------------------------------------------------------------------ the report


def test_report_of_real_results_validates_against_the_latest_schema_with_every_path_in_its_pattern() -> None:
    document = render_kcidb(sample(), "my_ci")
    assert (document["version"]["major"], document["version"]["minor"]) == (schema.LATEST.major, schema.LATEST.minor)
    schema.LATEST.validate_exactly(document)
    assert kcidb_submit.validate(document) == f"v{schema.LATEST.major}.{schema.LATEST.minor}"
    paths = [str(t["path"]) for t in document["tests"]]
    assert paths and all(PATH_RE.fullmatch(p) for p in paths), [p for p in paths if not PATH_RE.fullmatch(p)][:3]
    # As they were: the grids' ids are path segments already, so no digest is added.
    assert "madv_collapse.availability.anon-madvise-noadvice-noprctl-madvise-nice" in paths


def test_every_id_carries_the_origin_and_links_within_the_report() -> None:
    document = render_kcidb(sample(), "my_ci")
    objects = [*document["checkouts"], *document["builds"], *document["tests"]]
    assert {o["origin"] for o in objects} == {"my_ci"}
    assert all(str(o["id"]).startswith("my_ci:") for o in objects)
    checkouts = {c["id"] for c in document["checkouts"]}
    builds = {b["id"] for b in document["builds"]}
    assert {b["checkout_id"] for b in document["builds"]} <= checkouts
    assert {t["build_id"] for t in document["tests"]} <= builds
    assert len({t["id"] for t in document["tests"]}) == len(document["tests"])


def test_the_file_report_takes_a_valid_kcidb_origin_from_the_environment_else_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert report_origin() == ORIGIN
    monkeypatch.setenv("KCIDB_ORIGIN", "lab_7")
    assert report_origin() == "lab_7" and render_kcidb(sample())["checkouts"][0]["origin"] == "lab_7"
    monkeypatch.setenv("KCIDB_ORIGIN", "Not-An-Origin")
    assert report_origin() == ORIGIN  # kcidb-submit refuses it; a run's reports are still written


@pytest.mark.parametrize(
    "text",
    ["anon-never", "a.b", "a_b", "a[b]", "suites/test_collapse.py::test_populate[sid-anon]@sid-6a33775e282b", "ä", " "],
)
def test_path_segments_match_kcidb_v5_and_keep_ids_apart(text: str) -> None:
    segment = path_segment(text)
    assert PATH_RE.fullmatch(segment) and "." not in segment
    assert segment == path_segment(text)  # deterministic
    others = {path_segment(t) for t in ("a.b", "a_b", "a[b]", "a-b", "a:b")}
    assert len(others) == 5


def test_a_case_path_is_dotted_segments_and_ends_at_the_test_without_parameters() -> None:
    assert case_path("upstream", "populate", "anon-x", "upstream") == "madv_collapse.populate.anon-x"
    assert case_path("documented", "populate", "anon-x", "upstream") == "madv_collapse.documented.populate.anon-x"
    assert case_path("upstream", "smoke", "", "upstream") == "madv_collapse.smoke"
    assert PATH_RE.fullmatch(case_path("upstream", "populate", "anon.2M[x]", "upstream"))


def test_an_invalid_report_is_refused_with_its_first_error_on_one_line() -> None:
    document = render_kcidb(sample(), "my_ci")
    document["tests"][3]["path"] = "madv_collapse..bad"
    with pytest.raises(UserError, match=r"^the report does not validate against KCIDB v5\.\d+: tests\[3\]\.path: ") as err:
        kcidb_submit.validate(document)
    assert "\n" not in str(err.value)


def test_ids_sent_twice_are_refused() -> None:
    document = render_kcidb(sample(), "my_ci")
    document["tests"].append(dict(document["tests"][0]))
    with pytest.raises(UserError, match=r"sends 1 tests ids twice, first my_ci:"):
        kcidb_submit.validate(document)


# ------------------------------------------------------------------ where and as whom


def test_kcidb_rest_is_read_as_kernelci_tools_spell_it() -> None:
    assert kcidb_submit.target({}) == kcidb_submit.Target("https://staging.db.kernelci.org/submit", "")
    assert kcidb_submit.target({"KCIDB_REST": "https://tok%2Fen@db.kernelci.org/"}) == kcidb_submit.Target(
        "https://db.kernelci.org/submit", "tok/en"
    )
    both = kcidb_submit.target({"KCIDB_REST": "http://u@localhost:8080/kcidb/submit", "KCIDB_TOKEN": "t"})
    assert both == kcidb_submit.Target("http://localhost:8080/kcidb/submit", "t")
    assert both.status_url == "http://localhost:8080/kcidb/status?id="
    with pytest.raises(UserError, match=r"^KCIDB_REST='db\.kernelci\.org' is not an http\(s\) URL"):
        kcidb_submit.target({"KCIDB_REST": "db.kernelci.org"})


def test_a_token_issued_for_another_origin_is_refused() -> None:
    assert kcidb_submit.token_origin(jwt({"origin": "lab_7", "exp": 1})) == "lab_7"
    assert kcidb_submit.token_origin("opaque-token") is None
    kcidb_submit.check_token("opaque-token", "my_ci")
    with pytest.raises(UserError, match=r"issued for origin 'lab_7', but KCIDB_ORIGIN is 'my_ci'; set KCIDB_ORIGIN=lab_7$"):
        kcidb_submit.check_token(jwt({"origin": "lab_7"}), "my_ci")


# ------------------------------------------------------------------ the command


@dataclass
class Endpoint:
    """A local stand-in for kcidb-restd-rs: answers POST /submit with STATUS and its JSON receipt."""

    url: str
    status: int = 200
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    state = Endpoint("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append((self.path, dict(self.headers), body))
            ok = state.status == 200
            answer = {
                "id": "wvTu6myNQOlM7IEW" if ok else "0",
                "status": "ok" if ok else "error",
                "message": "Received" if ok else "JWT is required",
            }
            payload = json.dumps(answer).encode()
            self.send_response(state.status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(SAMPLE, run / "results.json")
    return run


def test_dry_run_validates_and_summarises_on_one_line_without_a_token(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["kcidb-submit", str(run_dir), "--dry-run"]) == Exit.CLEAN
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("kcidb-submit --dry-run: valid against KCIDB v5.")
    assert "checkouts" in out[0] and f"origin {ORIGIN} (default: set KCIDB_ORIGIN to submit)" in out[0]
    assert "https://staging.db.kernelci.org/submit" in out[0] and "token not set" in out[0]


def test_dry_run_json_is_the_report_alone_on_stdout(
    run_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KCIDB_ORIGIN", "my_ci")
    assert cli.main(["kcidb-submit", str(run_dir), "--dry-run", "--json"]) == Exit.CLEAN
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    schema.LATEST.validate_exactly(document)
    assert document["checkouts"][0]["origin"] == "my_ci" and "origin my_ci;" in captured.err


@pytest.mark.parametrize(
    "env,variable",
    [
        ({"KCIDB_ORIGIN": "my_ci"}, "KCIDB_TOKEN"),
        ({"KCIDB_TOKEN": "t"}, "KCIDB_ORIGIN"),
        ({"KCIDB_ORIGIN": "My-CI", "KCIDB_TOKEN": "t"}, "KCIDB_ORIGIN"),
    ],
    ids=["no-token", "no-origin", "bad-origin"],
)
def test_submitting_without_token_or_origin_is_one_line_naming_it(
    env: dict[str, str], variable: str, run_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["kcidb-submit", str(run_dir)]) == Exit.USAGE
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1 and captured.err.startswith(f"error: {variable}")


def test_json_without_dry_run_is_bad_input(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["kcidb-submit", str(run_dir), "--json"]) == Exit.USAGE
    assert "add --dry-run" in capsys.readouterr().err


def test_submission_posts_the_report_with_the_bearer_token_and_prints_the_receipt(
    endpoint: Endpoint, run_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KCIDB_ORIGIN", "my_ci")
    monkeypatch.setenv("KCIDB_REST", endpoint.url.replace("http://", "http://tok3n@"))
    assert cli.main(["kcidb-submit", str(run_dir)]) == Exit.CLEAN
    [(path, headers, body)] = endpoint.received
    assert path == "/submit" and headers["Authorization"] == "Bearer tok3n" and headers["Content-Type"] == "application/json"
    sent = json.loads(body)
    schema.LATEST.validate_exactly(sent)
    assert {t["origin"] for t in sent["tests"]} == {"my_ci"}
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("kcidb-submit: sent ") and out[0].endswith("submission wvTu6myNQOlM7IEW (ok)")
    assert out[1].endswith(f"'{endpoint.url}status?id=wvTu6myNQOlM7IEW'")


@pytest.mark.parametrize("status,exit_status", [(401, Exit.USAGE), (400, Exit.USAGE), (503, Exit.INFRASTRUCTURE)])
def test_a_refusal_is_bad_input_and_a_server_failure_infrastructure(
    status: int, exit_status: Exit, endpoint: Endpoint, run_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint.status = status
    monkeypatch.setenv("KCIDB_ORIGIN", "my_ci")
    monkeypatch.setenv("KCIDB_TOKEN", "t")
    monkeypatch.setenv("KCIDB_REST", endpoint.url)
    assert cli.main(["kcidb-submit", str(run_dir)]) == exit_status
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and f"HTTP {status}: JWT is required" in err
    assert ("check KCIDB_TOKEN" in err) == (status == 401)


def test_an_unreachable_endpoint_is_infrastructure_on_one_line(
    run_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("KCIDB_ORIGIN", "my_ci")
    monkeypatch.setenv("KCIDB_TOKEN", "t")
    monkeypatch.setenv("KCIDB_REST", f"http://127.0.0.1:{port}/")
    assert cli.main(["kcidb-submit", str(run_dir)]) == Exit.INFRASTRUCTURE
    err = capsys.readouterr().err
    assert err.startswith(f"error: could not reach http://127.0.0.1:{port}/submit: ") and len(err.splitlines()) == 1
