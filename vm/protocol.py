"""The host-guest protocol, imported by both sides (vm/machine.py on the host, vm/agent.py in the
guest): JSON lines. Requests go to the agent's stdin; answers come back on its stdout, each line
starting with PREFIX so that nothing else the guest prints is mistaken for one."""

from __future__ import annotations

import json
from dataclasses import dataclass

PREFIX = "@@collapse "

# Requests (host -> guest)
RUN, QUIT = "run", "quit"
# Events (guest -> host)
READY, RESULT, BYE = "ready", "result", "bye"


def run_request(case_id: str, case: dict[str, object]) -> bytes:
    return encode_request({"op": RUN, "id": case_id, "case": case})


def quit_request() -> bytes:
    return encode_request({"op": QUIT})


def encode_request(message: dict[str, object]) -> bytes:
    return (json.dumps(message) + "\n").encode()


def event_line(event: str, **fields: object) -> str:
    """One answer line of the agent: PREFIX, then the event as JSON."""
    return PREFIX + json.dumps({"event": event, **fields}) + "\n"


def parse_event(line: str) -> dict[str, object] | None:
    """The event a console line carries, or None for any other line the guest printed."""
    return json.loads(line[len(PREFIX) :]) if line.startswith(PREFIX) else None


@dataclass(frozen=True)
class CaseReply:
    """The agent's answer to one case, as the host reads it: the observation as JSON data (parsed by
    its reader: fixtures.observation for a workload, a plain object for a self-test), the guest's
    time and the kernel log of the case."""

    observed: dict[str, object]
    guest_s: float
    kmsg: list[str]

    @classmethod
    def of(cls, event: dict[str, object]) -> CaseReply:
        observed, guest_s, kmsg = event.get("observed"), event.get("guest_s"), event.get("kmsg")
        if not isinstance(observed, dict) or not isinstance(guest_s, int | float) or not isinstance(kmsg, list):
            raise ValueError(f"not a case result: {event!r}")
        return cls(observed, float(guest_s), [str(line) for line in kmsg])
