"""A patch series as developers receive it: a lore message-id or a local mbox (through b4), or a git
range of commits already in the tree. Whatever the form, the result is one mbox ready for `git am`,
the patches in order, the base-commit: trailer if any, and what a reply must quote."""

from __future__ import annotations

import email.header
import email.message
import email.utils
import mailbox
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from reports.exits import UserError
from workflows import commands

# A lore fetch without network must end, never hang: b4 is given this long.
B4_TIMEOUT_S = 120
BASE_TRAILER = re.compile(r"^base-commit:\s*([0-9a-f]{7,40})\s*$", re.MULTILINE)
NUMBERED = re.compile(r"\[[^\]]*?\b(\d+)/(\d+)\s*\]")
DIFF = re.compile(r"^(diff --git |--- a/|\+\+\+ b/|Index: )", re.MULTILINE)
# b4's lines that say what it is doing, never why it failed.
B4_BANNER = re.compile(r"^(Running in OFFLINE mode|Analyzing \d+ messages|Checking attestation|Looking up|Grabbing thread)")
SERIES = commands.command("collapse-series")


def option(variable: str) -> str:
    """SERIES=, BASE=, ... under make series; --series, --base, ... when run as a command."""
    return commands.option(SERIES, variable)


class Kind(Enum):
    MESSAGE_ID = "message-id"
    MBOX = "mbox"
    RANGE = "git range"


@dataclass(frozen=True)
class Patch:
    index: int  # 1-based, in order of application
    subject: str  # as sent, "[PATCH v2 2/3] mm: ..."
    message_id: str  # "" for a git range

    @property
    def name(self) -> str:
        return self.subject if NUMBERED.search(self.subject) else f"patch {self.index}: {self.subject}"


@dataclass(frozen=True)
class Series:
    source: str  # what the user passed
    kind: Kind
    mbox: Path  # the patches, in order, for git am
    patches: tuple[Patch, ...]
    base_hint: str  # the base-commit: trailer (or a range's start), "" when absent
    reply_subject: str  # the cover letter's subject, else patch 1's
    reply_to: str  # the Message-Id a reply goes under ("" for a git range)


def kind_of(source: str) -> Kind:
    if Path(source).expanduser().is_file():
        return Kind.MBOX
    if ".." in source and "@" not in source:
        return Kind.RANGE
    if "@" in source and " " not in source:
        return Kind.MESSAGE_ID
    raise UserError(f"{option('SERIES')}{source!r}: not an mbox file, a git range A..B nor a message-id; pass one of those")


def load(tree: Path, source: str, workdir: Path) -> Series:
    """The series named by SOURCE, its mbox written under WORKDIR."""
    kind = kind_of(source)
    workdir.mkdir(parents=True, exist_ok=True)
    if kind is Kind.RANGE:
        return _from_range(tree, source, workdir)
    thread = Path(source).expanduser().resolve() if kind is Kind.MBOX else _fetch_thread(tree, source, workdir)
    return _from_thread(tree, str(thread) if kind is Kind.MBOX else source, kind, thread, workdir)


def _from_range(tree: Path, source: str, workdir: Path) -> Series:
    start, _, end = source.partition("..")
    if end.startswith(".") or not start or not end:
        raise UserError(f"{option('SERIES')}{source}: give the range as BASE..TIP (two dots), e.g. HEAD~3..HEAD")
    for ref in (start, end):
        git(tree, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", what=f"{ref} is not a commit of {tree}; fetch it there first")
    base = git(tree, "rev-parse", f"{start}^{{commit}}")
    count = int(git(tree, "rev-list", "--count", "--no-merges", source))
    if count == 0:
        raise UserError(f"{option('SERIES')}{source}: the range holds no commit; pass BASE..TIP with TIP after BASE")
    mbox = workdir / "series.mbx"
    mbox.write_text(git(tree, "format-patch", "--stdout", "--numbered", "--no-signature", f"--base={base}", source, raw=True))
    patches = _patches(mbox)
    return Series(source, Kind.RANGE, mbox, patches, base, patches[0].subject, "")


def _fetch_thread(tree: Path, message_id: str, workdir: Path) -> Path:
    """The whole thread of MESSAGE_ID from lore, through `b4 mbox`."""
    msgid = message_id.strip().strip("<>").removeprefix("id:")
    out = workdir / "thread"
    fetch = ["mbox", "-C", "-o", str(out), "-n", "thread.mbx", msgid]
    _b4(tree, fetch, f"fetching {msgid} from lore", "pass the series as an mbox file instead")
    thread = out / "thread.mbx"
    if not thread.exists():
        raise UserError(f"b4 found no thread for {msgid}; check the message-id, or pass the series as an mbox file")
    return thread


def _from_thread(tree: Path, source: str, kind: Kind, thread: Path, workdir: Path) -> Series:
    """`b4 am -m`: the newest complete revision of the series in THREAD, trailers applied, in order."""
    out = workdir / "am"
    if kind is Kind.MBOX:
        holds_patches(thread, source)
    fix = f"check it with: b4 am -m {thread}" if kind is Kind.MBOX else "pass the series as an mbox file instead"
    # Offline: the thread is local, and b4 would otherwise ask lore for follow-up trailers.
    _b4(tree, ["--offline-mode", "am", "-C", "-m", str(thread), "-o", str(out), "-n", "series"], f"reading {thread}", fix)
    mbox = out / "series.mbx"
    if not mbox.exists() or not mbox.read_text().strip():
        raise UserError(f"{option('SERIES')}{source}: b4 found no patch in it; pass an mbox holding [PATCH n/m] messages")
    patches = _patches(mbox)
    messages = list(mailbox.mbox(str(thread)))
    cover = next((m for m in messages if _number(_subject(m)) == 0), None)
    first = cover or next((m for m in messages if _subject(m) and _clean_id(m) == patches[0].message_id), None)
    texts = [mbox.read_text(), *(_body(m) for m in messages)]
    hint = next((m.group(1) for t in texts for m in [BASE_TRAILER.search(t)] if m), "")
    reply_subject = _subject(first) if first is not None else patches[0].subject
    reply_to = _clean_id(first) if first is not None else patches[0].message_id
    return Series(source, kind, mbox, patches, hint, reply_subject, reply_to)


def holds_patches(mbox: Path, source: str) -> None:
    """An mbox the user passed holds mail with a diff in it: b4 fails on anything else with nothing but
    its banner ("Running in OFFLINE mode"), which names neither the problem nor the fix."""
    count = len(mailbox.mbox(str(mbox)))
    if count == 0:
        fix = "pass the mails as git format-patch --stdout or b4 mbox write them"
        raise UserError(f"{option('SERIES')}{source}: no mail in it (empty, or not an mbox); {fix}")
    if not DIFF.search(mbox.read_text(errors="replace")):
        fix = "pass the mbox of the [PATCH n/m] mails"
        raise UserError(f"{option('SERIES')}{source}: {count} mail(s) but no patch (no diff in any); {fix}")


def _b4(tree: Path, args: list[str], doing: str, fix: str) -> None:
    command = [str(Path(sys.executable).parent / "b4"), *args]
    if not Path(command[0]).exists():
        raise UserError("b4 is not installed in this environment; run through `make series` (tox env series), or pass a git range A..B")
    try:
        proc = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=B4_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise UserError(f"b4 gave no answer in {B4_TIMEOUT_S} s {doing} (no network?); pass the series as an mbox file") from None
    if proc.returncode != 0:
        raise UserError(f"b4 failed {doing}: {b4_reason(proc.stderr + proc.stdout, proc.returncode)}; {fix}")


def b4_reason(text: str, status: int) -> str:
    """b4's meaningful line: its last error, else its last line that is not a progress banner."""
    if "NameResolutionError" in text or "Failed to resolve" in text:
        return "no network: lore.kernel.org does not resolve"
    lines = [line.strip() for line in text.splitlines() if line.strip() and not B4_BANNER.match(line.strip())]
    detail = next((line for line in reversed(lines) if "rror" in line or "ailed" in line), lines[-1] if lines else "")
    return detail[:120] or f"b4 exited {status} and said no more than its banner"


def _patches(mbox: Path) -> tuple[Patch, ...]:
    messages = [m for m in mailbox.mbox(str(mbox)) if _subject(m)]
    if not messages:
        raise UserError(f"{mbox}: no patch in it")
    return tuple(Patch(i, _subject(m), _clean_id(m)) for i, m in enumerate(messages, 1))


def _subject(message: email.message.Message) -> str:
    raw = message.get("Subject", "")
    return " ".join(str(email.header.make_header(email.header.decode_header(raw))).split())


def _clean_id(message: email.message.Message) -> str:
    return str(message.get("Message-Id", "")).strip().strip("<>")


def _number(subject: str) -> int | None:
    found = NUMBERED.search(subject)
    return int(found.group(1)) if found else None


def _body(message: email.message.Message) -> str:
    payload = message.get_payload(decode=True) if not message.is_multipart() else b""
    return payload.decode(errors="replace") if isinstance(payload, bytes) else ""


def check_applies(tree: Path, base: str, series: Series, workdir: Path) -> None:
    """Apply each patch in order to BASE in a scratch index of TREE's repository (no checkout, no
    build): a series that does not apply is told at once, naming the first patch that fails."""
    split = workdir / "split"
    split.mkdir(parents=True, exist_ok=True)
    git(tree, "mailsplit", f"-o{split}", str(series.mbox))
    env = {**os.environ, "GIT_INDEX_FILE": str(workdir / "scratch-index")}
    subprocess.run(["git", "-C", str(tree), "read-tree", base], env=env, check=True, capture_output=True)
    for patch, mail in zip(series.patches, sorted(split.iterdir()), strict=False):
        proc = subprocess.run(["git", "-C", str(tree), "apply", "--cached", str(mail)], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise does_not_apply(patch.name, base, proc.stderr)


def does_not_apply(name: str, base: str, stderr: str) -> UserError:
    why = next((line.removeprefix("error: ").strip() for line in stderr.splitlines() if line.startswith("error:")), "")
    return UserError(f"{name} does not apply to {base[:12]} ({why}); pass {option('BASE')}<the commit it was made on>")


def git(tree: Path, *args: str, what: str = "", raw: bool = False) -> str:
    """git in TREE; its stdout, stripped unless RAW. WHAT is the one-line error when it fails."""
    proc = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or [""])[-1]
        raise UserError(what or f"git {' '.join(args[:2])} failed in {tree}: {detail}")
    return proc.stdout if raw else proc.stdout.strip()
