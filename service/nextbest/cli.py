"""`nextbest serve | config check`: the command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    serve = commands.add_parser(
        "serve",
        help="run the decision service (embedded mode)",
        description="Run the decision service. Each flag is also read from the environment "
        "variable in brackets; a flag given wins over its variable, which wins over the default.",
    )
    _add_settings_arguments(serve)
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
        sub.add_argument("--data-dir", default=_env("DATA_DIR", str(_default("data_dir"))))
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


def _add_settings_arguments(serve: argparse.ArgumentParser) -> None:
    """One flag per `ServerSettings` field: its name (or `Flag`), its description with the
    choices, the default and the environment variable as help. No `type`, no `choices`, no
    default here: the values go to the model as given, which validates them once."""
    from nextbest.settings import ServerSettings, env_var, flag, metavar, shown

    for name, field in ServerSettings.model_fields.items():
        help_text = field.description or ""
        if field.is_required():
            help_text += " (required)"
        else:
            default = _default(name)
            if default is not None and default is not False:
                help_text += f" (default: {shown(default)})"
        options: dict[str, Any] = {
            "dest": name,
            "default": argparse.SUPPRESS,  # not given: the environment, then the model's
            "help": f"{help_text} [{env_var(name)}]".replace("%", "%%"),
        }
        if field.annotation is bool:
            options["action"] = "store_true"
        else:
            options["metavar"] = metavar(name)
        serve.add_argument(flag(name), **options)


def _default(name: str) -> Any:
    """The default of setting `name`, as the model has it."""
    from nextbest.settings import ServerSettings

    return ServerSettings.model_fields[name].get_default(call_default_factory=True)


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
    """The settings of `serve`: its flags given, then NEXTBEST_* variables, then defaults;
    pydantic's ValidationError when a value is wrong."""
    from nextbest.settings import ServerSettings

    given = {name: getattr(args, name) for name in ServerSettings.model_fields if name in args}
    return ServerSettings.load(given)


def _invalid(exc: ValidationError) -> str:
    """Wrong settings in one line: one message per wrong value, each naming its flag."""
    from nextbest.settings import problems

    return "; ".join(problems(exc))


async def _serve(settings: ServerSettings) -> int:
    from pydantic import ValidationError

    from nextbest.api.server import Server, settle_gc

    log = get_logger("nextbest")
    try:
        server = Server(settings)
    except ValidationError as exc:
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
    from pydantic import ValidationError

    try:
        settings = _settings(args)
    except ValidationError as exc:  # one line, one message per wrong value
        configure()  # the level may be what is wrong
        get_logger("nextbest").error("cannot_start", reason=_invalid(exc))
        return 2
    configure(settings.log_level)
    loop_factory = None
    if settings.event_loop == "uvloop":
        import uvloop

        loop_factory = uvloop.new_event_loop
    if settings.worker is not None and not workers.become_worker(settings.worker):
        return 1  # its workers parent is gone
    if settings.workers != 1:
        return _run_workers(settings, sys.argv[1:] if argv is None else argv)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(_serve(settings))


def _run_workers(settings: ServerSettings, argv: list[str]) -> int:
    """`serve --workers N`: check what can be checked here, then run the workers parent,
    which starts N `serve` children with `argv` (see `nextbest.workers`)."""
    try:
        load_config(settings.config)
    except ConfigError as exc:
        get_logger("nextbest").error("cannot_start", reason=str(exc))
        return 2
    return workers.run(settings, argv)
