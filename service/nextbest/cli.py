"""`nextbest serve | config check`: the command line."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from nextbest import workers
from nextbest.observability.logging import configure, get_logger
from nextbest.policy.config import Config, load_config
from nextbest.policy.errors import ConfigError
from nextbest.simulate import command as simulate_command

if TYPE_CHECKING:
    from pydantic import ValidationError

    from nextbest.settings import ServerSettings


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"NEXTBEST_{name}", default)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nextbest", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the decision service (embedded mode)")
    serve.add_argument("--config", default=_env("CONFIG"), help="policy YAML [NEXTBEST_CONFIG]")
    serve.add_argument(
        "--address",
        default=_env("ADDRESS", "127.0.0.1:50051"),
        help="gRPC HOST:PORT, port 0 picks a free one [NEXTBEST_ADDRESS]",
    )
    serve.add_argument(
        "--metrics-address",
        default=_env("METRICS_ADDRESS", "127.0.0.1:9464"),
        help="/metrics HOST:PORT [NEXTBEST_METRICS_ADDRESS]",
    )
    serve.add_argument(
        "--http-address",
        default=_env("HTTP_ADDRESS"),
        help="Azure Personalizer-compatible REST API on HOST:PORT; off by default "
        "[NEXTBEST_HTTP_ADDRESS]",
    )
    serve.add_argument(
        "--data-dir",
        default=_env("DATA_DIR", "nextbest-data"),
        help="where logs and models are kept [NEXTBEST_DATA_DIR]",
    )
    serve.add_argument(
        "--fsync",
        default=_env("FSYNC", "interval"),
        choices=["always", "interval", "never"],
        help="when decisions and rewards reach the disk (see README) [NEXTBEST_FSYNC]",
    )
    serve.add_argument(
        "--log-level",
        default=_env("LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
        help="[NEXTBEST_LOG_LEVEL]",
    )
    _add_security_arguments(serve)
    _add_redis_arguments(serve)
    _add_workers_argument(serve)
    from nextbest import health

    health.add_arguments(
        commands.add_parser("health", help="exit 0 only when a server answers SERVING"),
        _env("ADDRESS"),
    )
    token = commands.add_parser("token", help="make tokens for the auth file")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    new_token = token_commands.add_parser(
        "new", help="print a fresh random token and the auth file entry that admits it"
    )
    new_token.add_argument("--name", required=True, help="the caller, as logs and audits show it")
    new_token.add_argument(
        "--scopes", required=True, help="comma-separated: decide, reward, read, admin"
    )
    config = commands.add_parser("config", help="work with policy files")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate a policy file")
    check.add_argument("file")
    model = commands.add_parser("model", help="export or import a policy's VW model")
    model_commands = model.add_subparsers(dest="model_command", required=True)
    for name, verb in (
        ("export", "write the policy's current model to FILE"),
        ("import", "serve FILE as the policy's model from the next start"),
    ):
        sub = model_commands.add_parser(name, help=verb)
        sub.add_argument("policy")
        sub.add_argument("file")
        sub.add_argument("--config", default=_env("CONFIG"), required=_env("CONFIG") is None)
        sub.add_argument("--data-dir", default=_env("DATA_DIR", "nextbest-data"))
    simulate = commands.add_parser(
        "simulate", help="drive the service with a simulated scenario and show it learn"
    )
    simulate_command.add_arguments(simulate)
    from nextbest import admin_command

    admin_command.add_arguments(
        commands.add_parser("admin", help="steer a running service: exploration, mode, models")
    )
    from nextbest.evaluate import command as evaluate_command

    evaluate = commands.add_parser(
        "evaluate", help="estimate policies and rewards off-policy on logged decisions (DSJSON)"
    )
    evaluate_command.add_arguments(evaluate)
    return parser


def _flag(name: str) -> bool:
    return (_env(name) or "").strip().lower() in {"1", "true", "yes", "on"}


def _add_redis_arguments(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--redis",
        default=_env("REDIS_URL"),
        help="Redis mode: redis://HOST:PORT (rediss:// for TLS) of a server or a cluster "
        "node; the password in the URL or NEXTBEST_REDIS_PASSWORD [NEXTBEST_REDIS_URL]",
    )
    serve.add_argument(
        "--role",
        default=_env("ROLE", "all"),
        help="Redis mode: server (answer DecisionService), learner (close windows, learn, "
        "publish models) or all [NEXTBEST_ROLE]",
    )
    serve.add_argument(
        "--model-publish-interval",
        type=float,
        default=_env("MODEL_PUBLISH_INTERVAL", "1.0"),  # a string: argparse applies `type`
        help="Redis mode: seconds between model snapshots [NEXTBEST_MODEL_PUBLISH_INTERVAL]",
    )
    serve.add_argument(
        "--spool-max-bytes",
        type=int,
        default=_env("SPOOL_MAX_BYTES", str(256 << 20)),
        help="Redis mode: what a serving replica keeps in its data dir while Redis is "
        "unreachable, at most (then it refuses calls and health says NOT_SERVING) "
        "[NEXTBEST_SPOOL_MAX_BYTES]",
    )


def _add_workers_argument(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--workers",
        type=int,
        default=_env("WORKERS", "1"),  # a string: argparse applies `type`
        help="serving processes sharing the gRPC port, one /metrics (Redis mode; see README) "
        "[NEXTBEST_WORKERS]",
    )


def _add_security_arguments(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--event-loop",
        choices=["uvloop", "asyncio"],
        default=_env("EVENT_LOOP", "uvloop" if _has_uvloop() else "asyncio"),
        help="uvloop (the default where installed: less CPU per call) or asyncio "
        "[NEXTBEST_EVENT_LOOP]",
    )
    serve.add_argument(
        "--auth-file",
        default=_env("AUTH_FILE"),
        help="tokens with scopes (YAML, see README); re-read on SIGHUP [NEXTBEST_AUTH_FILE]",
    )
    serve.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        default=_flag("ALLOW_UNAUTHENTICATED"),
        help="serve a non-loopback address without --auth-file [NEXTBEST_ALLOW_UNAUTHENTICATED]",
    )
    serve.add_argument(
        "--tls-cert", default=_env("TLS_CERT"), help="PEM certificate chain [NEXTBEST_TLS_CERT]"
    )
    serve.add_argument(
        "--tls-key", default=_env("TLS_KEY"), help="PEM private key [NEXTBEST_TLS_KEY]"
    )
    serve.add_argument(
        "--tls-client-ca",
        default=_env("TLS_CLIENT_CA"),
        help="PEM CA: require client certificates it signed (mTLS) [NEXTBEST_TLS_CLIENT_CA]",
    )


def _token(args: argparse.Namespace) -> int:
    from nextbest.api.auth import SCOPES, new_token

    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    unknown = [s for s in scopes if s not in SCOPES]
    if not scopes or unknown:
        shown = ", ".join(unknown) or "none given"
        print(f"nextbest token new: --scopes: {shown}: use {', '.join(SCOPES)}", file=sys.stderr)
        return 2
    try:
        token, entry = new_token(args.name, scopes)
    except ValueError as exc:
        print(f"nextbest token new: {exc}", file=sys.stderr)
        return 2
    print("# the token: give it to the caller (nextbest keeps only its hash)")
    print(token)
    print("# the auth file entry: add it under `tokens:`, then send the server SIGHUP")
    print(entry, end="")
    return 0


def _settings(args: argparse.Namespace) -> ServerSettings:
    """The settings of `serve`; pydantic's ValidationError when a value is wrong."""
    from nextbest.settings import ServerSettings
    from nextbest.store.durable import Durability

    return ServerSettings(
        config=args.config,
        address=args.address,
        metrics_address=args.metrics_address,
        http_address=args.http_address or None,
        data_dir=args.data_dir,
        log_level=args.log_level,
        durability=Durability(fsync=args.fsync),
        auth_file=args.auth_file or None,
        allow_unauthenticated=args.allow_unauthenticated,
        tls_cert=args.tls_cert or None,
        tls_key=args.tls_key or None,
        tls_client_ca=args.tls_client_ca or None,
        redis_url=args.redis or None,
        role=args.role,
        model_publish_interval=args.model_publish_interval,
        spool_max_bytes=args.spool_max_bytes,
        workers=args.workers,
        worker=workers.worker_index(),
    )


def _invalid(exc: ValidationError) -> str:
    """Wrong settings in one line: one message per wrong value."""
    return "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())


async def _serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from nextbest.api.server import Server, settle_gc

    log = get_logger("nextbest")
    try:
        settings = _settings(args)
        server = Server(settings)
    except ValidationError as exc:  # the settings: one line per wrong value
        log.error("cannot_start", reason=_invalid(exc))
        return 2
    except (ConfigError, OSError, ValueError) as exc:
        log.error("cannot_start", reason=str(exc))
        return 2
    # Signals are handled before the server says "serving": a SIGTERM right after that
    # line stops it gracefully, it does not kill it.
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    if settings.worker is not None:  # held by the workers parent until now
        workers.unblock_signals(signal.SIGTERM, signal.SIGINT)
    reloads: set[asyncio.Task[bool]] = set()  # held until done: the loop keeps weak refs

    def reload() -> None:
        server.reload_auth()  # a small file: read here, before the config
        task = asyncio.ensure_future(server.reload_async())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload)
    try:
        await server.start()
    except (ConfigError, OSError, ValueError) as exc:
        log.error("cannot_start", reason=str(exc))
        return 2
    if settings.worker is not None:  # a reload waits until there is a server to reload
        workers.unblock_signals(signal.SIGHUP)
    settle_gc()
    signalled = asyncio.ensure_future(stopping.wait())
    failed = asyncio.ensure_future(server.failed.wait())
    await asyncio.wait([signalled, failed], return_when=asyncio.FIRST_COMPLETED)
    for waiter in (signalled, failed):
        waiter.cancel()
    log.info("stopping")
    await server.stop()
    # The data dir failed (an fsync error): exit non-zero so that a supervisor restarts the
    # process, which recovers from what the disk holds.
    return 1 if server.failed.is_set() else 0


def _model(args: argparse.Namespace) -> int:
    from nextbest.store.transfer import export_model, import_model

    try:
        config = load_config(args.config)
        if args.model_command == "export":
            learned = export_model(Path(args.data_dir), config, args.policy, Path(args.file))
            print(f"{args.policy}: model with {learned} learned events written to {args.file}")
        else:
            import_model(Path(args.data_dir), config, args.policy, Path(args.file))
            print(f"{args.policy}: {args.file} will be served from the next start")
    except (ConfigError, OSError) as exc:
        print(f"nextbest model {args.model_command}: {exc}", file=sys.stderr)
        return 1
    return 0


def _check_vw(config: Config) -> None:
    """Make each policy's VW workspace, as `serve` will: VW refuses some arguments that
    only it can judge (unknown options, bad values)."""
    from nextbest.policy.model import Model

    for model in (Model(policy.vw_args) for policy in config.policies.values()):
        model.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "simulate":
        return simulate_command.run(args)
    if args.command == "admin":
        from nextbest import admin_command

        return admin_command.run(args)
    if args.command == "evaluate":
        from nextbest.evaluate import command as evaluate_command

        return evaluate_command.run(args)
    if args.command == "model":
        return _model(args)
    if args.command == "token":
        return _token(args)
    if args.command == "health":
        from nextbest import health

        return health.run(args)
    if args.command == "config":
        try:
            config = load_config(args.file)
            _check_vw(config)
        except ConfigError as exc:
            print(f"invalid: {exc}", file=sys.stderr)
            return 1
        for name, policy in config.policies.items():
            print(
                f"{name}: {len(policy.actions)} actions, {len(policy.safety)} safety rules, "
                f"mode {policy.mode}, config_version {policy.version()}"
            )
        return 0
    configure(args.log_level)
    if not args.config:
        print("nextbest serve: --config FILE (or NEXTBEST_CONFIG) is required", file=sys.stderr)
        return 2
    if args.event_loop not in ("uvloop", "asyncio"):
        print(
            f"nextbest serve: --event-loop {args.event_loop!r}: give uvloop or asyncio",
            file=sys.stderr,
        )
        return 2
    if args.event_loop == "uvloop" and not _has_uvloop():
        print("nextbest serve: --event-loop uvloop: uvloop is not installed", file=sys.stderr)
        return 2
    loop_factory = None
    if args.event_loop == "uvloop":
        import uvloop

        loop_factory = uvloop.new_event_loop
    worker = workers.worker_index()
    if worker is not None and not workers.become_worker(worker):
        return 1  # its workers parent is gone
    if args.workers != 1:
        return _run_workers(args, sys.argv[1:] if argv is None else argv)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(_serve(args))


def _run_workers(args: argparse.Namespace, argv: list[str]) -> int:
    """`serve --workers N`: check what can be checked here, then run the workers parent,
    which starts N `serve` children with `argv` (see `nextbest.workers`)."""
    from pydantic import ValidationError

    log = get_logger("nextbest")
    if args.workers < 1:
        log.error("cannot_start", reason=f"--workers {args.workers}: give 1 or more")
        return 2
    try:
        settings = _settings(args)
        load_config(settings.config)
    except ValidationError as exc:
        log.error("cannot_start", reason=_invalid(exc))
        return 2
    except ConfigError as exc:
        log.error("cannot_start", reason=str(exc))
        return 2
    return workers.run(settings, argv)


def _has_uvloop() -> bool:
    return importlib.util.find_spec("uvloop") is not None
