"""python -m reports kcidb-submit RUN: send a run's KCIDB v5 report to KernelCI's KCIDB, or, with
--dry-run, validate it against kcidb-io's latest schema and say what would be sent.

KernelCI's KCIDB takes reports over HTTP(S) (kcidb-ng, the kcidb-restd-rs service): a POST of the
JSON report to BASE/submit with `Authorization: Bearer TOKEN`, answered with JSON
{"id", "status", "message"}: 200 and status "ok" with the submission's id, or 4xx and status "error"
with the reason (a bad token is 401). The report is checked again after it is spooled; GET
BASE/status?id=ID (same header) says whether it was processed or failed. The token is a JWT KernelCI
issues for one origin, on request (kcidb-ng SUBMITTERS.md).

Environment (the names kernelci-pipeline and kci-dev use for KCIDB_REST):
  KCIDB_ORIGIN  the origin KernelCI agreed for this system ([a-z0-9_]+): every id starts with it.
                Required to submit; a dry run without it shows the default, collapse_conformance
  KCIDB_TOKEN   the submission token; else the user part of KCIDB_REST. Not needed for --dry-run
  KCIDB_REST    where to send: https://[TOKEN@]HOST[/PATH] (/submit is added unless PATH ends with
                it). Default KernelCI's staging, https://staging.db.kernelci.org/submit; production
                is KCIDB_REST=https://db.kernelci.org/

The exit status says whether the report was accepted (or, dry, is valid), not the run's verdict:
0 sent (dry: valid), 3 the endpoint could not be reached or failed (5xx), 4 bad input: no or bad
origin or token, a report the schema rejects, a refusal (4xx); one line on stderr names the fix.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import importlib
import importlib.metadata
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from reports.exits import Exit, UserError
from reports.kcidb import ORIGIN, ORIGIN_PATTERN, ORIGIN_VARIABLE, KcidbDocument, render_kcidb
from reports.record import Results

TOKEN_VARIABLE = "KCIDB_TOKEN"
REST_VARIABLE = "KCIDB_REST"
STAGING = "https://staging.db.kernelci.org/submit"  # kcidb-ng SUBMITTERS.md: start there, then production
TIMEOUT_S = 300  # a 3 MB report over a slow link; the daemon spools it without processing
KINDS = ("checkouts", "builds", "tests")


class InfrastructureError(Exception):
    """The endpoint could not be reached or failed: nothing the user's input can fix."""


@dataclass(frozen=True)
class Target:
    url: str  # the submit URL, without credentials
    token: str  # "" when none is set

    @property
    def status_url(self) -> str:
        return self.url.removesuffix("/submit") + "/status?id="


@dataclass(frozen=True)
class Receipt:
    """The endpoint's answer to an accepted report."""

    submission_id: str
    status: str
    message: str


# ------------------------------------------------------------------ what to send, where, as whom


def submit_origin(environ: Mapping[str, str], dry_run: bool) -> str:
    """KCIDB_ORIGIN, checked; a dry run may go without (the file report's default)."""
    value = environ.get(ORIGIN_VARIABLE)
    if value is None or value == "":
        if dry_run:
            return ORIGIN
        raise UserError(f"{ORIGIN_VARIABLE} is not set; set it to the origin KernelCI agreed for this system (e.g. {ORIGIN})")
    if not ORIGIN_PATTERN.fullmatch(value):
        raise UserError(f"{ORIGIN_VARIABLE}={value!r} is not a KCIDB origin; use lowercase letters, digits and _ only")
    return value


def target(environ: Mapping[str, str]) -> Target:
    """The submit URL and token: KCIDB_REST (https://[TOKEN@]HOST[/PATH]) or staging, KCIDB_TOKEN over
    a token in the URL."""
    rest = environ.get(REST_VARIABLE) or STAGING
    parsed = urllib.parse.urlsplit(rest)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UserError(f"{REST_VARIABLE}={rest!r} is not an http(s) URL; use https://[TOKEN@]HOST[/PATH], e.g. https://db.kernelci.org/")
    host = parsed.hostname if parsed.port is None else f"{parsed.hostname}:{parsed.port}"
    path = parsed.path if parsed.path.endswith("/submit") else parsed.path.rstrip("/") + "/submit"
    url = urllib.parse.urlunsplit((parsed.scheme, host, path, parsed.query, ""))
    token = environ.get(TOKEN_VARIABLE) or urllib.parse.unquote(parsed.username or "")
    return Target(url, token)


def token_origin(token: str) -> str | None:
    """The origin claim of a KCIDB JWT (kcidb-ng issues one per origin), unverified; None when the
    token is not a JWT or names none."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    origin = claims.get("origin") if isinstance(claims, dict) else None
    return origin if isinstance(origin, str) else None


def check_token(token: str, origin: str) -> None:
    claimed = token_origin(token)
    if claimed is not None and claimed != origin:
        raise UserError(
            f"{TOKEN_VARIABLE} was issued for origin {claimed!r}, but {ORIGIN_VARIABLE} is {origin!r}; set {ORIGIN_VARIABLE}={claimed}"
        )


# ------------------------------------------------------------------ validation


def validate(document: KcidbDocument) -> str:
    """Check DOCUMENT against kcidb-io's latest schema (upgraded to it when older) and for ids sent
    twice (KCIDB would merge them into one object); the schema's name, e.g. "v5.3"."""
    try:
        from kcidb_io import schema
    except ImportError:
        raise UserError("kcidb-io is not installed; pip install -r requirements.txt (or run from the project's tox env)") from None
    # kcidb-io's own dependency; it has no type information, so its error class is Any here.
    validation_error: type[Exception] = importlib.import_module("jsonschema.exceptions").ValidationError
    latest: Any = schema.LATEST
    data = cast(dict[str, object], document)
    try:
        latest.validate(data)  # against the document's own version: the error names its field
        latest.validate_exactly(latest.upgrade(data))
    except validation_error as err:
        error: Any = err
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".") or "report"
        raise UserError(f"the report does not validate against KCIDB {_name(latest)}: {where}: {error.message}") from None
    for kind in KINDS:
        twice = sorted(i for i, n in Counter(str(o["id"]) for o in document[kind]).items() if n > 1)  # type: ignore[literal-required]
        if twice:
            raise UserError(f"the report sends {len(twice)} {kind} ids twice, first {twice[0]}; KCIDB would merge them into one")
    return _name(latest)


def _name(version: Any) -> str:
    return f"v{version.major}.{version.minor}"


def kcidb_io_version() -> str:
    try:
        return importlib.metadata.version("kcidb-io")
    except importlib.metadata.PackageNotFoundError:
        return "?"


# ------------------------------------------------------------------ sending


Opener = Callable[..., Any]  # urllib.request.urlopen's shape; tests pass a fake


def post(where: Target, body: bytes, opener: Opener = urllib.request.urlopen) -> Receipt:
    """POST BODY to the submit URL with the bearer token; the endpoint's receipt, or UserError (a
    refusal: 4xx) or InfrastructureError (unreachable, 5xx, an answer that is not a receipt)."""
    request = urllib.request.Request(
        where.url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {where.token}", "User-Agent": "collapse-conformance"},
    )
    try:
        with opener(request, timeout=TIMEOUT_S) as response:
            answer = _answer(response.read())
    except urllib.error.HTTPError as err:
        reason = _answer(err.read()).message or err.reason
        if err.code in (401, 403):
            raise UserError(f"{where.url} refused the token (HTTP {err.code}: {reason}); check {TOKEN_VARIABLE}") from None
        if 400 <= err.code < 500:
            raise UserError(f"{where.url} refused the report (HTTP {err.code}: {reason})") from None
        raise InfrastructureError(f"{where.url} failed (HTTP {err.code}: {reason}); try again later") from None
    except (urllib.error.URLError, OSError) as err:
        cause = err.reason if isinstance(err, urllib.error.URLError) else err
        raise InfrastructureError(f"could not reach {where.url}: {cause}") from None
    if answer.status != "ok" or not answer.submission_id:
        raise InfrastructureError(f"{where.url} did not accept the report: {answer.message or 'no receipt in its answer'}")
    return answer


def _answer(raw: bytes) -> Receipt:
    """kcidb-restd-rs's JSON answer; an empty receipt when the body is not one."""
    try:
        value = json.loads(raw)
    except ValueError:
        return Receipt("", "", raw.decode(errors="replace").strip()[:200])
    if not isinstance(value, dict):
        return Receipt("", "", "")
    return Receipt(str(value.get("id") or ""), str(value.get("status") or ""), str(value.get("message") or ""))


# ------------------------------------------------------------------ the command


def add_parser(sub: Any) -> None:
    """The kcidb-submit subcommand of python -m reports."""
    command = sub.add_parser(
        "kcidb-submit",
        help="send a run's KCIDB report to KernelCI (env KCIDB_ORIGIN, KCIDB_TOKEN, KCIDB_REST)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("run", type=Path, help="a run directory (reports/out/RUN) or its results.json")
    command.add_argument("--dry-run", action="store_true", help="validate with kcidb-io and say what would be sent; send nothing")
    command.add_argument("--json", action="store_true", help="with --dry-run: the report on stdout (the summary goes to stderr)")


def counts(document: KcidbDocument) -> str:
    return ", ".join(f"{len(document[kind])} {kind}" for kind in KINDS)  # type: ignore[literal-required]


def run(
    results: Results, dry_run: bool, show_json: bool, environ: Mapping[str, str] = os.environ, opener: Opener = urllib.request.urlopen
) -> int:
    """kcidb-submit on RESULTS: validate, then send (or, dry, describe). One line on stderr for
    every refusal; the exit status of reports.exits."""
    try:
        if show_json and not dry_run:
            raise UserError("--json shows the report a dry run would send; add --dry-run")
        origin = submit_origin(environ, dry_run)
        where = target(environ)
        if not where.token and not dry_run:
            raise UserError(
                f"{TOKEN_VARIABLE} is not set; set it to the KCIDB token KernelCI issued for origin {origin} (or use --dry-run)"
            )
        if where.token:
            check_token(where.token, origin)
        document = render_kcidb(results, origin)
        schema_name = validate(document)
        body = json.dumps(document, sort_keys=True).encode()
        if dry_run:
            return _describe(document, body, origin, where, schema_name, show_json, environ)
        receipt = post(where, body, opener)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return Exit.USAGE
    except InfrastructureError as err:
        print(f"error: {err}", file=sys.stderr)
        return Exit.INFRASTRUCTURE
    print(f"kcidb-submit: sent {counts(document)} as origin {origin} to {where.url}: submission {receipt.submission_id} ({receipt.status})")
    print(f"processing status: curl -H 'Authorization: Bearer ${TOKEN_VARIABLE}' '{where.status_url}{receipt.submission_id}'")
    return Exit.CLEAN


def _describe(
    document: KcidbDocument, body: bytes, origin: str, where: Target, schema_name: str, show_json: bool, environ: Mapping[str, str]
) -> int:
    origin_note = "" if environ.get(ORIGIN_VARIABLE) else f" (default: set {ORIGIN_VARIABLE} to submit)"
    token_note = "set" if where.token else f"not set ({TOKEN_VARIABLE})"
    summary = (
        f"kcidb-submit --dry-run: valid against KCIDB {schema_name} (kcidb-io {kcidb_io_version()}, its latest): {counts(document)}; "
        f"origin {origin}{origin_note}; would POST {len(body)} bytes to {where.url}; token {token_note}"
    )
    if show_json:
        print(summary, file=sys.stderr)
        print(json.dumps(document, indent=1, sort_keys=True))
    else:
        print(summary)
    return Exit.CLEAN
