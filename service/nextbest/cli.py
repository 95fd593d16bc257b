"""`nextbest serve | config check`: the command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from nextbest.observability.logging import configure, get_logger
from nextbest.policy.config import Config, load_config
from nextbest.policy.errors import ConfigError
from nextbest.simulate import command as simulate_command


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
    from nextbest import health

    health.add_arguments(
        commands.add_parser("health", help="exit 0 only when a server answers SERVING"),
        _env("ADDRESS"),
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
    from nextbest.evaluate import command as evaluate_command

    evaluate = commands.add_parser(
        "evaluate", help="estimate policies and rewards off-policy on logged decisions (DSJSON)"
    )
    evaluate_command.add_arguments(evaluate)
    return parser


async def _serve(args: argparse.Namespace) -> int:
    from nextbest.api.server import Server
    from nextbest.settings import ServerSettings
    from nextbest.store.durable import Durability

    log = get_logger("nextbest")
    try:
        settings = ServerSettings(
            config=args.config,
            address=args.address,
            metrics_address=args.metrics_address,
            data_dir=args.data_dir,
            log_level=args.log_level,
            durability=Durability(fsync=args.fsync),
        )
        server = Server(settings)
        await server.start()
    except (ConfigError, OSError, ValueError) as exc:
        log.error("cannot_start", reason=str(exc))
        return 2
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    reloads: set[asyncio.Task[bool]] = set()  # held until done: the loop keeps weak refs

    def reload() -> None:
        task = asyncio.ensure_future(server.reload_async())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload)
    await stopping.wait()
    log.info("stopping")
    await server.stop()
    return 0


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
    if args.command == "evaluate":
        from nextbest.evaluate import command as evaluate_command

        return evaluate_command.run(args)
    if args.command == "model":
        return _model(args)
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
    return asyncio.run(_serve(args))
