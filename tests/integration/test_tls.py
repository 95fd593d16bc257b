"""TLS and mTLS with certificates made here: the Python SDK (sync, asyncio, Admin) connects
with the right CA and client certificate and is refused without them; the client
certificate's subject is the caller; /metrics stays plain."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from nextbest.settings import ServerSettings
from nextbest_client import (
    Admin,
    AsyncNextBest,
    NextBest,
    PermissionDenied,
    Retry,
    TLSConfig,
    Unauthenticated,
    Unavailable,
)
from tests.certs import Authority
from tests.conftest import EXAMPLE, make_config, support_policy
from tests.integration.conftest import Process, serve_args
from tests.integration.secure import SecureServer, write_auth_file

POLICY = "support.next_step"
SUBJECT = "CN=agent-7,O=nextbest tests"
ONCE = Retry(attempts=1)  # a refused handshake is UNAVAILABLE: no point retrying it here


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return Authority(tmp_path_factory.mktemp("pki"))


def _start(tmp: pytest.TempPathFactory, pki: Authority, **settings: object) -> SecureServer:
    pair = pki.server()
    return SecureServer(
        make_config(support__next_step=support_policy()),
        tmp.mktemp("data") / "data",
        tls_cert=pair.cert,
        tls_key=pair.key,
        **settings,
    )


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, pki: Authority) -> Iterator[SecureServer]:
    server = _start(tmp_path_factory, pki)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mtls_server(tmp_path_factory: pytest.TempPathFactory, pki: Authority) -> Iterator[SecureServer]:
    server = _start(tmp_path_factory, pki, tls_client_ca=pki.ca)
    yield server
    server.stop()


def test_tls_with_the_servers_ca(tls_server: SecureServer, pki: Authority) -> None:
    with NextBest(tls_server.target, tls=TLSConfig(ca=pki.ca)) as nb:
        d = nb.decide(POLICY, "billing_dispute", {"account_age_days": 3})
        assert d.action != "offer_refund"
        assert nb.explain(d.event_id).action == d.action
    # the CA as PEM text, and a name override (the certificate names localhost)
    pem = pki.ca.read_text()
    port = tls_server.target.rpartition(":")[2]
    with NextBest(f"localhost:{port}", tls=TLSConfig(ca=pem, server_name="localhost")) as nb:
        assert nb.decide(POLICY, "billing_dispute").action


def test_tls_refuses_plaintext_and_unknown_cas(tls_server: SecureServer, tmp_path: Path) -> None:
    with (
        NextBest(tls_server.target, tls=False, retry=ONCE, timeout=5) as nb,
        pytest.raises(Unavailable),
    ):
        nb.decide(POLICY, "billing_dispute")
    other = Authority(tmp_path, "a CA the server never used")
    with (
        NextBest(tls_server.target, tls=TLSConfig(ca=other.ca), retry=ONCE, timeout=5) as nb,
        pytest.raises(Unavailable),
    ):
        nb.decide(POLICY, "billing_dispute")


def test_nextbest_health_asks_over_tls_with_the_ca(
    tls_server: SecureServer, mtls_server: SecureServer, pki: Authority
) -> None:
    """Probes need no token: the CA, and under mTLS a client certificate."""
    from nextbest import health

    code, found = health.check(tls_server.target, tls_ca=str(pki.ca))
    assert (code, found.rpartition(": ")[2]) == (health.SERVING, "SERVING")
    assert health.check(tls_server.target, timeout=2)[0] == health.UNREACHABLE  # plaintext
    pair = pki.client("probe")
    client = (str(pair.cert), str(pair.key))
    assert health.check(mtls_server.target, tls_ca=str(pki.ca), client=client)[0] == 0
    assert health.check(mtls_server.target, tls_ca=str(pki.ca), timeout=2)[0] == 2


def test_metrics_stay_plain_http(tls_server: SecureServer) -> None:
    with urllib.request.urlopen(tls_server.metrics_url, timeout=5) as response:
        assert b"nextbest_" in response.read()


def test_mtls_admits_a_client_certificate_and_names_its_subject(
    mtls_server: SecureServer, pki: Authority
) -> None:
    client = pki.client("agent-7")
    tls = TLSConfig(ca=pki.ca, cert=client.cert, key=client.key)
    with NextBest(mtls_server.target, tls=tls) as nb:
        assert nb.decide(POLICY, "billing_dispute").action
    with Admin(mtls_server.target, tls=tls) as admin:
        status = admin.set_exploration(POLICY, per_intent={"login_problem": 0.05}, reason="t")
        assert {o.setting: o.set_by for o in status.overrides}[
            "exploration.per_intent.login_problem"
        ] == SUBJECT
        assert [p.policy for p in admin.list_policies()] == [POLICY]


def test_mtls_refuses_a_client_without_a_certificate_or_with_a_strangers(
    mtls_server: SecureServer, pki: Authority, tmp_path: Path
) -> None:
    with (
        NextBest(mtls_server.target, tls=TLSConfig(ca=pki.ca), retry=ONCE, timeout=5) as nb,
        pytest.raises(Unavailable),
    ):
        nb.decide(POLICY, "billing_dispute")
    stranger = Authority(tmp_path, "a stranger's CA").client("mallory")
    tls = TLSConfig(ca=pki.ca, cert=stranger.cert, key=stranger.key)
    with (
        NextBest(mtls_server.target, tls=tls, retry=ONCE, timeout=5) as nb,
        pytest.raises(Unavailable),
    ):
        nb.decide(POLICY, "billing_dispute")


def test_the_async_client_reads_tls_and_token_from_the_environment(
    mtls_server: SecureServer, pki: Authority, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = pki.client("agent-8")
    monkeypatch.setenv("NEXTBEST_TLS_CA", str(pki.ca))
    monkeypatch.setenv("NEXTBEST_TLS_CERT", str(client.cert))
    monkeypatch.setenv("NEXTBEST_TLS_KEY", str(client.key))
    monkeypatch.setenv("NEXTBEST_TOKEN", "ignored without an auth file")

    async def run() -> str:
        async with AsyncNextBest(mtls_server.target) as nb:
            d = await nb.decide(POLICY, "billing_dispute")
            return (await nb.explain(d.event_id)).action

    assert asyncio.run(run())


def test_mtls_and_tokens_together(tmp_path_factory: pytest.TempPathFactory, pki: Authority) -> None:
    auth = write_auth_file(
        tmp_path_factory.mktemp("auth") / "auth.yaml",
        {"ops": ("ops-token", ["admin", "read"]), "agent": ("agent-token", ["decide"])},
    )
    server = _start(tmp_path_factory, pki, tls_client_ca=pki.ca, auth_file=auth)
    client = pki.client("agent-9")
    tls = TLSConfig(ca=pki.ca, cert=client.cert, key=client.key)
    try:
        with Admin(server.target, tls=tls, retry=ONCE) as admin, pytest.raises(Unauthenticated):
            admin.list_policies()  # a certificate is not a token
        with (
            Admin(server.target, tls=tls, token="agent-token") as admin,
            pytest.raises(PermissionDenied, match="'read'"),
        ):
            admin.list_policies()
        with Admin(server.target, tls=tls, token="ops-token") as admin:
            status = admin.set_mode(POLICY, "frozen", reason="incident")
            assert status.mode == "frozen"
            assert {o.setting: o.set_by for o in status.overrides}["mode"] == "ops"
            admin.clear_overrides(POLICY, reason="over")
    finally:
        server.stop()


def test_mtls_is_enough_auth_for_an_open_address(
    tmp_path_factory: pytest.TempPathFactory, pki: Authority
) -> None:
    server = _start(tmp_path_factory, pki, tls_client_ca=pki.ca, address="0.0.0.0:0")
    client = pki.client("agent-10")
    try:
        tls = TLSConfig(ca=pki.ca, cert=client.cert, key=client.key)
        with NextBest(server.target, tls=tls) as nb:
            assert nb.decide(POLICY, "billing_dispute").action
    finally:
        server.stop()


def test_tls_settings_are_checked(tmp_path: Path, pki: Authority) -> None:
    with pytest.raises(ValidationError, match="--tls-cert and --tls-key go together"):
        ServerSettings(config=EXAMPLE, tls_cert=pki.ca)
    with pytest.raises(ValidationError, match="--tls-client-ca needs --tls-cert"):
        ServerSettings(config=EXAMPLE, tls_client_ca=pki.ca)
    with pytest.raises(ValueError, match="cert and key go together"):
        TLSConfig(cert="client.crt")
    with pytest.raises(OSError, match=r"TLSConfig.ca: .*missing.pem"):
        NextBest("127.0.0.1:1", tls=TLSConfig(ca=tmp_path / "missing.pem"))


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (("--tls-cert", "CA"), "--tls-cert and --tls-key go together"),
        (("--tls-cert", "MISSING", "--tls-key", "KEY"), "--tls-cert"),
        (("--tls-cert", "CERT", "--tls-key", "CERT"), "--tls-key"),
        (("--tls-cert", "CERT", "--tls-key", "OTHER_KEY"), "is not the key of --tls-cert"),
    ],
    ids=["key-missing", "cert-unreadable", "no-key-in-file", "key-of-another-cert"],
)
def test_bad_tls_files_stop_the_start(
    tmp_path: Path, pki: Authority, flags: tuple[str, ...], reason: str
) -> None:
    pair, other = pki.server("s1"), pki.server("s2")
    files = {
        "CA": pki.ca,
        "MISSING": tmp_path / "missing.crt",
        "CERT": pair.cert,
        "KEY": pair.key,
        "OTHER_KEY": other.key,
    }
    process = Process(*serve_args(tmp_path / "data", *(str(files.get(f, f)) for f in flags)))
    record = process.wait_event("cannot_start")
    assert reason in record["reason"]
    assert "\n" not in record["reason"]
    assert process.proc.wait(timeout=30) == 2
