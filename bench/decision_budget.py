"""Issue 15's budget: what each part of one decision costs in this process, hot, against the
per-decision time that DecideBatch ≥ 25,000 decisions/s allows (40 µs, everything included).

    .venv/bin/python bench/decision_budget.py            # ≈ 20 s
    .venv/bin/python bench/decision_budget.py --n 5000 --json /tmp/budget.json

Each part runs alone in a tight loop over `wire.py`'s 48 agent requests (and the light
`support.next_step` ones), with the service's own code and objects: the request's parse,
its conversion, the checks and fingerprint, the candidates and the CEL rule, the VW lines
and scoring, exploration and the Event, the journal record (encode + write, fsync
`interval`), the metrics and the info log line into /dev/null, the response's conversion and
serialization; then the whole path of a unary Decide, and of a DecideBatch of the 48 (per
decision: one `Engine.decide_many`, one journal write, one log flush). Hot loops are the
best case: inside a serving process each part costs about twice as much (see
bench/README.md, `handler_cost.py`). So when the sum of the parts that no design can drop
exceeds the budget here, the target is out of reach for this code in CPython, whatever is
reorganised around them. It reports and never gates.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lib.load import timed
from lib.tables import TableData, render
from lib.traffic import make_requests
from wire import agent_requests, write_config

from nextbest_client.v1 import decision_pb2 as pb

BATCH_BUDGET_US = 1e6 / 25_000  # DecideBatch ≥ 25,000 decisions/s, on one event loop
# The parts every decision needs whatever the design: read the request, score with VW,
# apply the safety rule, keep the event durably, answer. (Metrics, the log line, the
# engine's own bookkeeping could in principle shrink or be shared by a batch.)
IRREDUCIBLE = (
    "parse request",
    "decide_input",
    "candidates + CEL rule",
    "VW lines + costs",
    "journal record (encode + write)",
    "response (convert + serialize)",
)


def parts(root: Path, n: int) -> dict[str, dict[str, float]]:
    """µs per decision of each part, per request kind."""
    from nextbest.observability.logging import configure
    from nextbest.observability.metrics import Metrics, Telemetry
    from nextbest.policy.config import load_config
    from nextbest.policy.engine import Engine
    from nextbest.store.durable import Durability, open_store

    with open(os.devnull, "wb") as devnull:
        configure("info", devnull)
        config = load_config(write_config(root))
        store, models, _ = open_store(root / "budget", config, Durability(), 10 * n + 50_000)
        telemetry = Telemetry(Metrics())
        engine = Engine(config, store, telemetry, time.time, models=models)
        try:
            return {
                kind: _kind_parts(engine, store, telemetry, reqs, n)
                for kind, reqs in (("agent", agent_requests(48)), ("light", make_requests(48)))
            }
        finally:
            engine.shutdown()
            store.shutdown()


def _kind_parts(
    engine: Any, store: Any, telemetry: Any, reqs: list[pb.DecideRequest], n: int
) -> dict[str, float]:
    from nextbest.api import convert
    from nextbest.policy import exploration
    from nextbest.policy.engine import fingerprint
    from nextbest.policy.features import shared_line
    from nextbest.policy.ports import run_now
    from nextbest.policy.requests import check_decide

    wire = [r.SerializeToString() for r in reqs]
    inputs = [convert.decide_input(r) for r in reqs]
    rt = engine.policy(inputs[0].policy)
    events = [run_now(engine.decide(x)) for x in inputs]
    lines = [e.vw_lines() for e in events]
    fresh = iter([_fresh(events[i % 48]) for i in range(4 * n + 500)])

    def explore(i: int) -> object:
        event = events[i % 48]
        greedy = exploration.greedy_index([-s for s in event.scores])
        pmf = exploration.epsilon_greedy(greedy, [True] * len(event.scores), 0.1)
        return exploration.sample(pmf, exploration.draw(0, rt.name, event.event_id))

    def checks(i: int) -> str:
        check_decide(inputs[i % 48], engine.limits)
        return str(fingerprint(inputs[i % 48]))

    def masks(i: int) -> object:
        x = inputs[i % 48]
        return rt.rules.mask(x.intent, x.context, engine._candidates(rt, x)[0])

    def score(i: int) -> object:
        x = inputs[i % 48]
        return rt.model.costs([shared_line(x.intent, x.context), *lines[i % 48][1:]])

    def whole(i: int) -> bytes:
        x = convert.decide_input(pb.DecideRequest.FromString(wire[i % 48]))
        return bytes(convert.decide_response(run_now(engine.decide(x))).SerializeToString())

    batch_wire = pb.DecideBatchRequest(requests=reqs).SerializeToString()

    def batch(i: int) -> bytes:
        """DecideBatch's path for 48 requests: parse, convert, `decide_many`, fill, serialize."""
        items = pb.DecideBatchRequest.FromString(batch_wire).requests
        outcomes = run_now(engine.decide_many([convert.decide_input(x) for x in items]))
        out = pb.DecideBatchResponse()
        for outcome in outcomes:
            convert.fill_decision(out.results.add().decision, outcome)
        return bytes(out.SerializeToString())

    return {
        "parse request": timed(lambda i: pb.DecideRequest.FromString(wire[i % 48]), n),
        "decide_input": timed(lambda i: convert.decide_input(reqs[i % 48]), n),
        "checks + fingerprint": timed(checks, n),
        "candidates + CEL rule": timed(masks, n),
        "VW lines + costs": timed(score, n),
        "VW costs alone": timed(lambda i: rt.model.costs(lines[i % 48]), n),
        "exploration (pmf, draw, sample)": timed(explore, n),
        "choose (VW + exploration + Event)": timed(
            lambda i: engine._choose(rt, inputs[i % 48], events[i % 48].eligible, [], False, ""),
            n,
        ),
        "journal record (encode + write)": timed(lambda i: run_now(store.add(next(fresh))), n),
        "metrics + info log line": timed(lambda i: telemetry.decided([events[i % 48]]), n),
        "response (convert + serialize)": timed(
            lambda i: convert.decide_response(events[i % 48]).SerializeToString(), n
        ),
        "whole servicer path": timed(whole, n),
        "DecideBatch path, per decision (48 per call)": timed(batch, max(n // 48, 20)) / 48,
    }


def _fresh(event: Any) -> Any:
    """The same decision under a new id, so the store keeps it as a new event."""
    import dataclasses

    return dataclasses.replace(event, event_id=os.urandom(16).hex())


def table(found: dict[str, dict[str, float]]) -> TableData:
    kinds = list(found)
    names = list(found[kinds[0]])
    rows = [[name, *(f"{found[k][name]:.1f}" for k in kinds)] for name in names]
    for k in kinds:
        found[k]["sum of the irreducible parts"] = sum(found[k][p] for p in IRREDUCIBLE)
    rows.append(
        [
            "sum of the irreducible parts (" + ", ".join(IRREDUCIBLE) + ")",
            *(f"{found[k]['sum of the irreducible parts']:.1f}" for k in kinds),
        ]
    )
    rows.append(
        ["budget per decision for DecideBatch ≥ 25,000/s", *[f"{BATCH_BUDGET_US:.1f}"] * len(kinds)]
    )
    return TableData(
        "One decision's parts, µs, hot, in process (median of 3 chunks)",
        ["part", *kinds],
        rows,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="calls per chunk (default 3,000)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--plain", action="store_true", help="plain text, no rich tables")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nextbest-budget-") as tmp:
        found = parts(Path(tmp), args.n)
    data = table(found)
    render([data], plain=args.plain)
    print(f"load average after: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(found, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
