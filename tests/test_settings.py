"""Every setting is validated at start-up, with a message naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stream.engine.exclusions import AbandonedExclusion, ExclusionPolicy
from stream.settings import ConfigError, Settings, env_name, load_settings

BAD_VALUES = {
    "broker": "localhost:9092",
    "redis_url": "http://redis",
    "web_host": "",
    "web_port": "70000",
    "app_id": "",
    "state_dir": "",
    "broker_session_timeout": "0",
    "broker_heartbeat_interval": "-1",
    "commit_interval": "soon",
    "log_level": "loud",
    "topic": "",
    "dlq_topic": "",
    "customer_base_topic": "",
    "topic_partitions": "0",
    "windows": "1h,fortnight",
    "timezone": "Mars/Olympus",
    "repeat_interval": "7",
    "max_clock_skew": "0s",
    "max_label_values": "0",
    "dimensions": "queue,channel",
    "definitions": "default=customer/7d,default=customer_reason/1d",
    "customer_base": "-5",
    "max_record_bytes": "12",
    "exclude_abandoned": "some",
    "short_abandon_threshold": "10",
    "anonymous_customer_ids": "guest," + "x" * 300,
    "denominators": "orders=orders:sum",
    "redis_prefix": "",
    "api_token": "",
    "top_customers": "0",
    "burst_contacts": "1",
    "burst_window": "half an hour",
    "kafka_security_protocol": "TLS",
    "kafka_sasl_mechanism": "GSSAPI",
    "kafka_sasl_username": "",
    "kafka_sasl_password": "",
    "kafka_ssl_cafile": "/no/such/ca.pem",
    "kafka_ssl_certfile": "/no/such/client.pem",
    "kafka_ssl_keyfile": "/no/such/client.key",
    "redis_ssl_cafile": "/no/such/ca.pem",
    "redis_ssl_certfile": "/no/such/client.pem",
    "redis_ssl_keyfile": "/no/such/client.key",
}


def test_every_setting_has_a_bad_value_under_test():
    assert set(BAD_VALUES) == set(Settings.model_fields)


@pytest.mark.parametrize("field", sorted(BAD_VALUES))
def test_a_bad_value_is_refused_naming_the_variable(field, monkeypatch):
    monkeypatch.setenv(env_name(field), BAD_VALUES[field])
    with pytest.raises(ConfigError, match=env_name(field)):
        load_settings()


def test_defaults_are_the_contract_defaults():
    settings = load_settings()
    assert settings.broker == "kafka://localhost:9092"
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.web_port == 6066
    assert settings.window_names == ("1h", "24h", "7d", "30d")
    assert settings.repeat_interval_ms == 7 * 86_400_000
    assert settings.max_clock_skew_ms == 5 * 60_000
    assert settings.max_label_values == 20


def test_exclusion_settings_become_the_policy(monkeypatch):
    # The defaults leave every abandoned contact counted: events without a status, and
    # producers already sending one, keep today's figures.
    assert ExclusionPolicy.from_settings(load_settings()) == ExclusionPolicy()
    monkeypatch.setenv("RCR_EXCLUDE_ABANDONED", "short")
    monkeypatch.setenv("RCR_SHORT_ABANDON_THRESHOLD", "5s")
    monkeypatch.setenv("RCR_ANONYMOUS_CUSTOMER_IDS", " Walk-In , ,GUEST")
    settings = load_settings()
    assert settings.anonymous_customer_ids == "guest,walk-in"
    assert ExclusionPolicy.from_settings(settings) == ExclusionPolicy(
        AbandonedExclusion.SHORT, 5_000, frozenset({"guest", "walk-in"})
    )
    monkeypatch.setenv("RCR_ANONYMOUS_CUSTOMER_IDS", "")  # only null and blank ids then
    assert ExclusionPolicy.from_settings(load_settings()).anonymous_customer_ids == frozenset()


def test_the_worker_refuses_to_start_on_a_bad_value():
    result = subprocess.run(
        [sys.executable, "-m", "stream", "worker"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"RCR_WINDOWS": "1h,fortnight", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert "RCR_WINDOWS" in result.stderr and "fortnight" in result.stderr


def test_flags_override_the_environment(monkeypatch):
    from click.testing import CliRunner

    from stream.cli import main

    monkeypatch.setenv("RCR_WEB_PORT", "not-a-port")
    result = CliRunner().invoke(main, ["lookup", "x", "--web-port", "abc"])
    assert result.exit_code == 2 and "RCR_WEB_PORT" in result.output
    unreachable = ["lookup", "x", "--web-port", "7000", "--redis-url", "redis://127.0.0.1:1/0"]
    result = CliRunner().invoke(main, unreachable)
    assert result.exit_code == 1 and "unreachable" in result.output  # the flag won


def test_sasl_needs_credentials(monkeypatch):
    monkeypatch.setenv("RCR_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    with pytest.raises(ConfigError, match="RCR_KAFKA_SASL_USERNAME"):
        load_settings()


def test_kafka_security_reaches_every_client():
    import ssl

    import faust

    from stream.app.kafka_options import client_options, faust_credentials

    ca = ssl.get_default_verify_paths().cafile  # any valid CA bundle will do
    assert ca, "no system CA bundle"
    settings = load_settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="rcr",
        kafka_sasl_password="pw",
        kafka_ssl_cafile=ca,
    )
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("rcr", "pw")
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.ssl_context is not None
    assert faust_credentials(load_settings()) is None
    assert "pw" not in repr(settings)  # secrets stay out of logs


@pytest.mark.parametrize(
    "value",
    [
        "orders",
        "orders=orders",
        "orders=:count",
        "Orders=orders:count",
        "9orders=orders:count",
        "order-count=orders:count",
        "customers=subscribers:snapshot",
        "all=orders:count",
        "orders=orders:count,orders=refunds:count",
        "orders=orders:average",
        "dlq=contacts-dlq:count",
    ],
)
def test_denominators_refused_naming_the_variable(value, monkeypatch):
    monkeypatch.setenv("RCR_DENOMINATORS", value)
    with pytest.raises(ConfigError, match="RCR_DENOMINATORS"):
        load_settings()


def test_denominators_parse():
    settings = load_settings(denominators=" orders=orders:count , subs=eu.subscribers:v2:snapshot")
    assert [(s.name, s.topic, s.kind) for s in settings.denominator_specs] == [
        ("orders", "orders", "count"),
        ("subs", "eu.subscribers:v2", "snapshot"),
    ]
    assert load_settings().denominator_specs == ()


@pytest.fixture
def pem_file(tmp_path):
    """An existing file: the settings only check that the paths exist."""
    path = tmp_path / "file.pem"
    path.write_text("not checked here\n")
    return str(path)


@pytest.mark.parametrize("prefix", ["kafka", "redis"])
@pytest.mark.parametrize("name", ["cafile", "certfile", "keyfile"])
def test_tls_files_without_tls_are_refused_naming_them(prefix, name, pem_file, monkeypatch):
    monkeypatch.setenv(env_name(f"{prefix}_ssl_{name}"), pem_file)
    with pytest.raises(ConfigError, match=env_name(f"{prefix}_ssl_{name}")) as refused:
        load_settings()
    assert "only apply with" in str(refused.value)


@pytest.mark.parametrize(
    ("tls", "prefix"),
    [({"kafka_security_protocol": "SSL"}, "kafka"), ({"redis_url": "rediss://r:6380/0"}, "redis")],
)
def test_a_client_certificate_needs_its_key(tls, prefix, pem_file):
    with pytest.raises(ConfigError, match=env_name(f"{prefix}_ssl_keyfile")):
        load_settings(**tls, **{f"{prefix}_ssl_certfile": pem_file})
    with pytest.raises(ConfigError, match=env_name(f"{prefix}_ssl_certfile")):
        load_settings(**tls, **{f"{prefix}_ssl_keyfile": pem_file})


def test_redis_tls_files_reach_the_redis_clients(pem_file):
    from stream.sinks.redis_projection import redis_tls_options

    assert redis_tls_options(load_settings()) == {}
    settings = load_settings(
        redis_url="rediss://:pw@r:6380/0",
        redis_ssl_cafile=pem_file,
        redis_ssl_certfile=pem_file,
        redis_ssl_keyfile=pem_file,
    )
    assert redis_tls_options(settings) == {
        "ssl_ca_certs": pem_file,
        "ssl_certfile": pem_file,
        "ssl_keyfile": pem_file,
    }


def test_a_redis_password_never_reaches_a_message(monkeypatch):
    from stream.settings import redacted_url

    assert redacted_url("rediss://user:s3cret@r:6380/0") == "rediss://user:***@r:6380/0"
    assert redacted_url("redis://r:6379/0") == "redis://r:6379/0"
    monkeypatch.setenv("RCR_REDIS_URL", "http://:s3cret@redis:6379")
    with pytest.raises(ConfigError, match="RCR_REDIS_URL") as refused:
        load_settings()
    assert "s3cret" not in str(refused.value)


def test_the_lookup_error_hides_the_redis_password():
    unreachable = "redis://:s3cret@127.0.0.1:1/0"
    result = subprocess.run(
        [sys.executable, "-m", "stream", "lookup", "x", "--redis-url", unreachable],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "unreachable" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout


def test_refusals_name_the_setting_to_check():
    import ssl

    from aiokafka.errors import KafkaConnectionError, UnsupportedSaslMechanismError

    from stream.app.broker_access import describe_refusal

    sasl = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "rcr",
        "sasl_plain_password": "s3cret",
    }
    untrusted = ssl.SSLCertVerificationError(1, "certificate verify failed")
    untrusted.verify_message = "unable to get local issuer certificate"
    cases = {
        "RCR_KAFKA_SSL_CAFILE": describe_refusal(untrusted, sasl),
        "RCR_KAFKA_SASL_MECHANISM": describe_refusal(UnsupportedSaslMechanismError(), sasl),
        "RCR_KAFKA_SASL_PASSWORD": describe_refusal(KeyError("v"), sasl),
        "RCR_KAFKA_SECURITY_PROTOCOL=PLAINTEXT": describe_refusal(
            KafkaConnectionError("Connection closed"), {"security_protocol": "PLAINTEXT"}
        ),
    }
    for setting, reason in cases.items():
        assert setting in reason
        assert "s3cret" not in reason
