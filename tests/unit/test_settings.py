"""`ServerSettings`: the one place a setting of `nextbest serve` is declared. Its fields make
the flags, the NEXTBEST_* variables, the defaults and the checks; a flag beats its variable,
which beats the default; a wrong value is one line naming its flag."""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from nextbest import cli
from nextbest.policy.requests import Limits
from nextbest.settings import ServerSettings, choices_of, env_var, flag, problems
from nextbest.store.durable import Durability

README = Path(__file__).resolve().parents[2] / "README.md"

# Each setting: what a user types and the value it makes, none of them the default. Two
# groups, each valid as a whole (`--workers 2` refuses `--http-address`).
GROUPS: list[dict[str, tuple[str | None, Any]]] = [
    {
        "config": ("policies.yaml", Path("policies.yaml")),
        "address": ("127.0.0.1:7000", "127.0.0.1:7000"),
        "metrics_address": ("127.0.0.1:7001", "127.0.0.1:7001"),
        "data_dir": ("elsewhere", Path("elsewhere")),
        "fsync": ("always", "always"),
        "log_level": ("WARNING", "warning"),
        "event_loop": ("asyncio", "asyncio"),
        "auth_file": ("auth.yaml", Path("auth.yaml")),
        "allow_unauthenticated": (None, True),  # a flag without a value; `true` in the env
        "tls_cert": ("server.crt", Path("server.crt")),
        "tls_key": ("server.key", Path("server.key")),
        "tls_client_ca": ("ca.pem", Path("ca.pem")),
        "redis_url": ("redis://127.0.0.1:1/0", "redis://127.0.0.1:1/0"),
        "role": ("server", "server"),
        "model_publish_interval": ("2.5", 2.5),
        "spool_max_bytes": ("8192", 8192),
        "workers": ("2", 2),
        "worker": ("1", 1),
        "join_tick": ("0.5", 0.5),
        "coalesce_wait": ("0.002", 0.002),
        "retain_closed": ("7", 7),
        "max_closed_bytes": ("1000", 1000),
        "max_pending_bytes": ("2000", 2000),
        "grace": ("1.5", 1.5),
        "checkpoint_every": ("3", 3),
        "checkpoint_interval": ("9.0", 9.0),
        "max_receive_message_bytes": ("2048", 2048),
        "durability": ('{"retention_age": 60}', Durability(fsync="always", retention_age=60)),
        "limits": ('{"max_batch": 10}', Limits(max_batch=10)),
    },
    {
        "config": ("policies.yaml", Path("policies.yaml")),
        "http_address": ("127.0.0.1:7002", "127.0.0.1:7002"),
    },
]


@pytest.fixture(autouse=True)
def _no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the shell running the tests may have set is not what a test sets."""
    for name in ServerSettings.model_fields:
        monkeypatch.delenv(env_var(name), raising=False)


def serve_options() -> dict[str, argparse.Action]:
    """`nextbest serve`'s options by flag."""
    parser = cli._parser()
    (commands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    serve = commands.choices["serve"]
    return {option: action for action in serve._actions for option in action.option_strings}


def from_command_line(*argv: str) -> ServerSettings:
    """The settings `nextbest serve ARGV` runs with, in this environment."""
    return cli._settings(cli._parser().parse_args(["serve", *argv]))


def argv_of(group: dict[str, tuple[str | None, Any]]) -> list[str]:
    argv: list[str] = []
    for name, (given, _) in group.items():
        argv += [flag(name)] if given is None else [flag(name), given]
    return argv


def reason(argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """The one line `nextbest serve ARGV` refuses to start with."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as refused:
        from_command_line(*argv)
    return cli._invalid(refused.value)


def test_every_setting_has_a_flag_and_a_variable_named_in_its_help() -> None:
    options = serve_options()
    tried = {name for group in GROUPS for name in group}
    assert tried == set(ServerSettings.model_fields)  # a new setting: add it to GROUPS
    for name in ServerSettings.model_fields:
        option = options[flag(name)]
        assert option.dest == name
        assert option.default is argparse.SUPPRESS  # the model's default, not argparse's
        assert option.help is not None
        assert option.help.endswith(f"[{env_var(name)}]")
    assert set(options) - {"-h", "--help"} == {flag(n) for n in ServerSettings.model_fields}


def test_the_flags_and_variables_of_old_keep_their_names() -> None:
    """As `nextbest serve` had them before they came from the model (deploy files use them)."""
    old = {
        "--config": "CONFIG",
        "--address": "ADDRESS",
        "--metrics-address": "METRICS_ADDRESS",
        "--http-address": "HTTP_ADDRESS",
        "--data-dir": "DATA_DIR",
        "--fsync": "FSYNC",
        "--log-level": "LOG_LEVEL",
        "--event-loop": "EVENT_LOOP",
        "--auth-file": "AUTH_FILE",
        "--allow-unauthenticated": "ALLOW_UNAUTHENTICATED",
        "--tls-cert": "TLS_CERT",
        "--tls-key": "TLS_KEY",
        "--tls-client-ca": "TLS_CLIENT_CA",
        "--redis": "REDIS_URL",
        "--role": "ROLE",
        "--model-publish-interval": "MODEL_PUBLISH_INTERVAL",
        "--spool-max-bytes": "SPOOL_MAX_BYTES",
        "--workers": "WORKERS",
        "--worker": "WORKER",  # no flag before: what a --workers parent sets
    }
    names = {flag(n): env_var(n) for n in ServerSettings.model_fields}
    for option, variable in old.items():
        assert names[option] == f"NEXTBEST_{variable}"


@pytest.mark.parametrize("group", GROUPS)
def test_every_setting_is_read_from_its_variable(
    group: dict[str, tuple[str | None, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, (given, _) in group.items():
        monkeypatch.setenv(env_var(name), "true" if given is None else given)
    settings = from_command_line()
    for name, (_, expected) in group.items():
        assert getattr(settings, name) == expected, name


@pytest.mark.parametrize("group", GROUPS)
def test_every_setting_is_read_from_its_flag(group: dict[str, tuple[str | None, Any]]) -> None:
    settings = from_command_line(*argv_of(group))
    for name, (_, expected) in group.items():
        assert getattr(settings, name) == expected, name


def test_a_flag_beats_its_variable_which_beats_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    default = ServerSettings(config=Path("p.yaml"))
    assert from_command_line("--config", "p.yaml") == default
    monkeypatch.setenv("NEXTBEST_CONFIG", "from-env.yaml")
    monkeypatch.setenv("NEXTBEST_ADDRESS", "127.0.0.1:7000")
    monkeypatch.setenv("NEXTBEST_FSYNC", "never")
    monkeypatch.setenv("NEXTBEST_GRACE", "1")
    env = from_command_line()
    assert (env.config, env.address, env.grace) == (Path("from-env.yaml"), "127.0.0.1:7000", 1)
    assert env.durability.fsync == env.fsync == "never"
    assert env.checkpoint_interval == default.checkpoint_interval
    flags = from_command_line("--address", "127.0.0.1:7001", "--fsync", "always")
    assert (flags.config, flags.address, flags.grace) == (
        Path("from-env.yaml"),
        "127.0.0.1:7001",
        1,
    )
    assert flags.durability.fsync == flags.fsync == "always"
    # a variable is not even checked when its flag is given
    monkeypatch.setenv("NEXTBEST_ADDRESS", "nowhere")
    assert from_command_line("--address", "127.0.0.1:7001").address == "127.0.0.1:7001"


def test_an_empty_value_means_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTBEST_HTTP_ADDRESS", "127.0.0.1:7002")
    assert from_command_line("--config", "p", "--http-address", "").http_address is None
    monkeypatch.setenv("NEXTBEST_HTTP_ADDRESS", "")
    monkeypatch.setenv("NEXTBEST_ADDRESS", "")
    settings = from_command_line("--config", "p")
    assert (settings.http_address, settings.address) == (None, "127.0.0.1:50051")


def test_fsync_is_durability_fsync_however_given() -> None:
    assert ServerSettings(config=Path("p")).durability == Durability()
    given = ServerSettings(config=Path("p"), durability=Durability(fsync="never"))
    assert given.fsync == "never"  # as `nextbest simulate` gives it
    both = from_command_line("--config", "p", "--durability", '{"fsync": "never"}')
    assert both.fsync == "never"
    both = from_command_line(
        "--config",
        "p",
        "--fsync",
        "always",
        "--durability",
        '{"fsync": "never", "keep_checkpoints": 5}',
    )
    assert both.durability == Durability(fsync="always", keep_checkpoints=5)


def test_settings_built_in_python_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """An embedded server (`nextbest simulate`, tests) must not pick up a NEXTBEST_REDIS_URL
    or a client's NEXTBEST_TLS_CERT meant for something else."""
    monkeypatch.setenv("NEXTBEST_REDIS_URL", "redis://production:6379/0")
    monkeypatch.setenv("NEXTBEST_TLS_CERT", "client.crt")
    monkeypatch.setenv("NEXTBEST_WORKERS", "4")
    settings = ServerSettings(config=Path("p"))
    assert (settings.redis_url, settings.tls_cert, settings.workers) == (None, None, 1)


@pytest.mark.parametrize(
    ("argv", "env", "line"),
    [
        (["--workers", "many"], {}, "--workers many: Input should be a valid integer"),
        ([], {"NEXTBEST_WORKERS": "0"}, "--workers 0: Input should be greater than or equal"),
        (["--address", "nowhere"], {}, "--address nowhere: give HOST:PORT"),
        ([], {"NEXTBEST_LOG_LEVEL": "loud"}, "--log-level loud: Input should be 'debug'"),
        ([], {"NEXTBEST_EVENT_LOOP": "trio"}, "--event-loop trio: Input should be 'uvloop'"),
        ([], {"NEXTBEST_ALLOW_UNAUTHENTICATED": "maybe"}, "--allow-unauthenticated maybe: "),
        (["--grace", "-1"], {}, "--grace -1: Input should be greater than or equal to 0"),
        (["--limits", '{"max_batches": 1}'], {}, '--limits {"max_batches": 1}: no field max_'),
        (["--limits", "{"], {}, "--limits {: not JSON"),
        (["--durability", '{"fsync_interval": "soon"}'], {}, "--durability fsync_interval=soon"),
        (["--redis", "http://u:secret@h"], {}, "--redis http://u:***@h: give redis://"),
        (["--workers", "2"], {}, "--workers 2 needs --redis"),
        (["--tls-key", "k"], {}, "--tls-cert and --tls-key go together"),
    ],
)
def test_a_wrong_value_is_one_line_naming_its_flag(
    argv: list[str], env: dict[str, str], line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    said = reason(["--config", "p.yaml", *argv], env, monkeypatch)
    assert said.startswith(line.split()[0]), said  # the flag first
    assert line in said, said
    assert "\n" not in said
    assert "secret" not in said


def test_each_wrong_value_has_its_own_message(monkeypatch: pytest.MonkeyPatch) -> None:
    said = reason(["--config", "p", "--workers", "0", "--grace", "soon"], {}, monkeypatch)
    assert said.count("; ") == 1
    assert "--workers 0: " in said
    assert "--grace soon: " in said
    missing = reason([], {}, monkeypatch)
    assert missing == "--config FILE (or NEXTBEST_CONFIG) is required"


def test_problems_name_the_flag_of_a_setting_built_in_python() -> None:
    with pytest.raises(ValidationError) as refused:
        ServerSettings(config=Path("p"), spool_max_bytes=10)
    assert problems(refused.value) == [
        "--spool-max-bytes 10: Input should be greater than or equal to 4096"
    ]


def test_log_levels_are_the_same_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    levels = choices_of("log_level")
    assert levels == ("debug", "info", "warning", "error", "critical")
    option = serve_options()["--log-level"]
    assert option.choices is None  # the model checks, once
    assert option.metavar == "{" + ",".join(levels) + "}"
    known = logging.getLevelNamesMapping()  # what `configure` maps a level with
    for level in levels:
        assert level.upper() in known
        assert from_command_line("--config", "p", "--log-level", level).log_level == level
        monkeypatch.setenv("NEXTBEST_LOG_LEVEL", level.upper())
        assert from_command_line("--config", "p").log_level == level
    readme = README.read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `--log-level"))
    assert re.findall(r"`(\w+)`", row.split("|")[4]) == list(levels)


def test_the_readme_lists_every_flag_and_variable() -> None:
    readme = README.read_text()
    section = readme[readme.index("## The service") : readme.index("### Auth and TLS")]
    for name in ServerSettings.model_fields:
        assert re.search(rf"\| `{flag(name)}[ `]", section), flag(name)
        assert f"`{env_var(name)}`" in section, env_var(name)


def test_model_commands_share_the_data_dir_default() -> None:
    args = cli._parser().parse_args(["model", "export", "p", "f", "--config", "c"])
    assert Path(args.data_dir) == ServerSettings.model_fields["data_dir"].default
