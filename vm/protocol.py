"""The host-guest protocol, imported by both sides (vm/machine.py on the host, vm/agent.py in the
guest): JSON lines. Requests go to the agent's stdin; answers come back on its stdout, each line
starting with PREFIX so that nothing else the guest prints is mistaken for one."""

from __future__ import annotations

import json

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
