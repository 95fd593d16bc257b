"""`nextbest admin list|get|set-exploration|set-mode|clear|reload|models|rollback`: the
AdminService from a shell, readable by default and `--json` for scripts.

Exit status: 0 done, 1 refused by the server (the status and its message are printed),
2 not reachable.
"""

from __future__ import annotations

import argparse
import os
import sys

from google.protobuf import json_format
from google.protobuf.message import Message

from nextbest_client import Admin, Retry, TLSConfig
from nextbest_client.errors import DeadlineExceeded, NextBestError, Unavailable
from nextbest_proto.v1 import admin_pb2 as pb

REFUSED = 1
UNREACHABLE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--address",
        default=env("NEXTBEST_ADDRESS", "127.0.0.1:50051"),
        help="gRPC HOST:PORT [NEXTBEST_ADDRESS]",
    )
    parser.add_argument(
        "--token", default=env("NEXTBEST_TOKEN"), help="bearer token [NEXTBEST_TOKEN]"
    )
    parser.add_argument("--tls-ca", default=env("NEXTBEST_TLS_CA"), help="CA bundle (PEM)")
    parser.add_argument("--tls-cert", default=env("NEXTBEST_TLS_CERT"), help="client cert")
    parser.add_argument("--tls-key", default=env("NEXTBEST_TLS_KEY"), help="client key")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds [10]")
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    verbs = parser.add_subparsers(dest="admin_command", required=True)
    verbs.add_parser("list", help="every policy: versions, ε, mode, overrides")
    get = verbs.add_parser("get", help="one policy in full")
    get.add_argument("policy")
    explore = verbs.add_parser("set-exploration", help="override ε live")
    explore.add_argument("policy")
    explore.add_argument("--epsilon", type=float)
    explore.add_argument(
        "--intent",
        action="append",
        default=[],
        metavar="INTENT=EPSILON",
        help="a per-intent ε (repeatable)",
    )
    explore.add_argument("--reason", required=True)
    mode = verbs.add_parser("set-mode", help="override the learning mode live")
    mode.add_argument("policy")
    mode.add_argument("mode", choices=["online", "apprentice", "frozen", "logging_only"])
    mode.add_argument("--reason", required=True)
    clear = verbs.add_parser("clear", help="drop a policy's overrides")
    clear.add_argument("policy")
    clear.add_argument("--reason", required=True)
    reload = verbs.add_parser("reload", help="re-read the policy file, as SIGHUP")
    reload.add_argument("--reason", required=True)
    models = verbs.add_parser("models", help="a policy's model checkpoints")
    models.add_argument("policy")
    rollback = verbs.add_parser("rollback", help="serve a checkpoint's model")
    rollback.add_argument("policy")
    rollback.add_argument("version")
    rollback.add_argument("--reason", required=True)


def _call(admin: Admin, args: argparse.Namespace) -> Message:
    verb = args.admin_command
    if verb == "list":
        return pb.ListPoliciesResponse(policies=admin.list_policies())
    if verb == "get":
        return admin.get_policy(args.policy)
    if verb == "set-exploration":
        per_intent: dict[str, float] = {}
        for item in args.intent:
            intent, sep, value = item.rpartition("=")
            if not sep:
                raise SystemExit(f"nextbest admin: --intent {item!r}: use INTENT=EPSILON")
            per_intent[intent] = float(value)
        return admin.set_exploration(
            args.policy, args.epsilon, per_intent=per_intent, reason=args.reason
        )
    if verb == "set-mode":
        return admin.set_mode(args.policy, args.mode, reason=args.reason)
    if verb == "clear":
        return admin.clear_overrides(args.policy, reason=args.reason)
    if verb == "reload":
        return admin.reload_config(reason=args.reason)
    if verb == "models":
        return pb.ListModelsResponse(models=admin.list_models(args.policy))
    return admin.rollback_model(args.policy, args.version, reason=args.reason)


def run(args: argparse.Namespace) -> int:
    """One AdminService call through the SDK's Admin client, sent once (no retries)."""
    tls: TLSConfig | bool = False
    if args.tls_ca or args.tls_cert or args.tls_key:
        try:
            tls = TLSConfig(ca=args.tls_ca, cert=args.tls_cert, key=args.tls_key)
        except ValueError as exc:
            print(f"nextbest admin: {exc}", file=sys.stderr)
            return REFUSED
    client = Admin(
        args.address, token=args.token or "", tls=tls, timeout=args.timeout, retry=Retry(attempts=1)
    )
    with client as admin:
        try:
            reply = _call(admin, args)
        except NextBestError as exc:
            print(f"nextbest admin: {exc}", file=sys.stderr)
            return UNREACHABLE if isinstance(exc, Unavailable | DeadlineExceeded) else REFUSED
    if args.json:
        print(json_format.MessageToJson(reply, preserving_proto_field_name=True, indent=2))
    else:
        print(_readable(reply))
    return 0


def _readable(reply: Message) -> str:
    if isinstance(reply, pb.ListPoliciesResponse):
        return "\n\n".join(_policy(p) for p in reply.policies) or "no policies"
    if isinstance(reply, pb.PolicyStatus):
        return _policy(reply)
    if isinstance(reply, pb.ReloadConfigResponse):
        if not reply.applied:
            return f"rejected: {reply.error}"
        versions = ", ".join(f"{p} {v}" for p, v in sorted(reply.config_versions.items()))
        return f"reloaded: {versions}"
    if isinstance(reply, pb.ListModelsResponse):
        rows = [
            f"{m.version:>10}  learned {m.learned:<10} {_time(m.created_at)}"
            f"{'  (serving)' if m.serving else ''}  {m.vw_args}"
            for m in reply.models
        ]
        return "\n".join(rows) or "no checkpoints yet"
    return str(reply)


def _policy(p: pb.PolicyStatus) -> str:
    e, f = p.exploration, p.file_exploration
    intents = ", ".join(f"{k} {v:g}" for k, v in sorted(e.per_intent.items())) or "none"
    lines = [
        f"{p.policy}  config {p.config_version}  model {p.model_version}  pending {p.pending}",
        f"  mode {p.mode} (file: {p.file_mode})",
        f"  ε {e.epsilon:g} (file: {f.epsilon:g}, max {e.max_epsilon:g}, {e.algorithm}); "
        f"per intent: {intents}",
    ]
    for o in p.overrides:
        under = f" over {o.file_value}" if o.file_value else ""
        lines.append(
            f"  override {o.setting} = {o.value}{under}  by {o.set_by} at {_time(o.set_at)}: "
            f"{o.reason}"
        )
    c = p.counters
    rewards = ", ".join(f"{k} {v}" for k, v in sorted(c.rewards.items())) or "none"
    share = f"{c.explored / c.decisions:.1%}" if c.decisions else "-"
    lines.append(
        f"  decisions {c.decisions} (explored {share}, fallbacks {c.fallbacks}); rewards: {rewards}"
    )
    return "\n".join(lines)


def _time(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
