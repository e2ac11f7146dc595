"""One typed settings object: environment variables ``RCR_*``, each also a CLI flag.

A bad value stops start-up with a message naming the variable (``ConfigError``).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream.durations import parse_duration_ms

ENV_PREFIX = "RCR_"


class ConfigError(ValueError):
    """A setting has a bad value; the message names the environment variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    # Where things are.
    broker: str = Field("kafka://localhost:9092", description="Kafka bootstrap URL(s)")
    redis_url: str = Field("redis://localhost:6379/0", description="Redis for customer lookups")
    web_host: str = Field("0.0.0.0", min_length=1, description="address the HTTP server binds")
    web_port: int = Field(6066, ge=1, le=65535, description="HTTP port: /metrics, /rates, ...")
    app_id: str = Field("rcr-stream", min_length=1, description="consumer group and table prefix")
    state_dir: str = Field(".rcr-data", min_length=1, description="worker data directory")

    # Consumer group timing. Faust's defaults suit a real cluster; `rcr dev` and the tests
    # shorten them for the embedded broker, whose group joins wait half a session timeout.
    broker_session_timeout: float = Field(60.0, gt=0, description="consumer session (s)")
    broker_heartbeat_interval: float = Field(3.0, gt=0, description="heartbeat interval (s)")
    commit_interval: float = Field(2.8, gt=0, description="offset commit interval (s)")
    log_level: str = Field(
        "info",
        pattern=r"^(?i:debug|info|warning|error)$",
        description="debug, info, warning or error",
    )

    # Topics.
    topic: str = Field("contacts", min_length=1, description="contact events")
    dlq_topic: str = Field("contacts-dlq", min_length=1, description="rejected records")
    customer_base_topic: str = Field("customer-base", min_length=1, description="active base")
    topic_partitions: int = Field(4, ge=1, le=10_000, description="partitions of created topics")

    # Semantics (contract section 2).
    windows: str = Field("1h,24h,7d,30d", description="rolling windows, comma separated")
    timezone: str = Field("UTC", description="IANA zone of calendar day / week / month")
    repeat_interval: str = Field("7d", description="max gap between a contact and its repeat")
    max_clock_skew: str = Field("5m", description="how far ahead of the wall clock is accepted")
    max_label_values: int = Field(20, ge=1, le=1000, description="values per dimension")
    customer_base: float | None = Field(
        None, gt=0, description="active customers until the customer-base topic says otherwise"
    )
    max_record_bytes: int = Field(65_536, ge=256, description="larger records are rejected")

    # Redis projection and drill-down.
    redis_prefix: str = Field("rcr:", min_length=1, description="key prefix of the lookups")
    top_customers: int = Field(100, ge=1, le=10_000, description="kept per top-customers set")
    burst_contacts: int = Field(3, ge=2, le=1000, description="contacts that make a burst")
    burst_window: str = Field("30m", description="... within this span")

    # Security. Redis takes its password and TLS from the URL (redis://:pw@host, rediss://),
    # the files that go with TLS from the redis_ssl_* settings.
    api_token: SecretStr | None = Field(None, description="bearer token for /customers/{id}")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
    )
    kafka_sasl_username: str | None = Field(None, min_length=1, description="SASL user")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password")
    kafka_ssl_cafile: str | None = Field(None, description="CA bundle that signed the brokers")
    kafka_ssl_certfile: str | None = Field(None, description="client certificate (mutual TLS)")
    kafka_ssl_keyfile: str | None = Field(None, description="its private key (PEM)")
    redis_ssl_cafile: str | None = Field(None, description="CA bundle that signed Redis")
    redis_ssl_certfile: str | None = Field(None, description="client certificate for Redis")
    redis_ssl_keyfile: str | None = Field(None, description="its private key (PEM)")

    @field_validator("kafka_sasl_password")
    @classmethod
    def _password_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            raise ValueError("empty password (unset it when SASL is not used)")
        return value

    @field_validator("api_token")
    @classmethod
    def _token_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 8:
            raise ValueError("a bearer token needs at least 8 characters (unset it to disable)")
        return value

    @field_validator(
        "kafka_ssl_cafile",
        "kafka_ssl_certfile",
        "kafka_ssl_keyfile",
        "redis_ssl_cafile",
        "redis_ssl_certfile",
        "redis_ssl_keyfile",
    )
    @classmethod
    def _file_exists(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"no such file: {value!r}")
        return value

    @field_validator("windows")
    @classmethod
    def _windows_parse(cls, value: str) -> str:
        names = [part.strip() for part in value.split(",") if part.strip()]
        if not names:
            raise ValueError("at least one rolling window is needed, e.g. 1h,24h,7d,30d")
        for name in names:
            parse_duration_ms(name)
        if len(set(names)) != len(names):
            raise ValueError(f"windows repeat: {value!r}")
        return ",".join(names)

    @field_validator("repeat_interval", "max_clock_skew", "burst_window")
    @classmethod
    def _duration_parses(cls, value: str) -> str:
        parse_duration_ms(value)
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}, e.g. UTC, Europe/Paris") from None
        return value

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        for url in value.split(";"):
            parts = urlsplit(url.strip())
            if parts.scheme not in {"kafka", "aiokafka"} or not parts.hostname:
                raise ValueError(f"expected kafka://host:port, got {url!r}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"redis", "rediss", "unix"}:
            raise ValueError(f"expected redis://host:port/db, got {redacted_url(value)!r}")
        return value

    @model_validator(mode="after")
    def _topics_distinct(self) -> Settings:
        if len({self.topic, self.dlq_topic, self.customer_base_topic}) != 3:
            raise ValueError("topic, dlq_topic and customer_base_topic must differ")
        if self.broker_heartbeat_interval >= self.broker_session_timeout:
            raise ValueError("broker_heartbeat_interval must be below broker_session_timeout")
        sasl = self.kafka_security_protocol.startswith("SASL")
        if sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(
                f"RCR_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "RCR_KAFKA_SASL_USERNAME and RCR_KAFKA_SASL_PASSWORD"
            )
        self._tls_files_fit()
        return self

    def _tls_files_fit(self) -> None:
        """TLS files that would be silently ignored, or half a client certificate, are refused."""
        kafka_tls = self.kafka_security_protocol.endswith("SSL")
        redis_tls = urlsplit(self.redis_url).scheme == "rediss"
        for prefix, tls, needs in (
            ("kafka", kafka_tls, "RCR_KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL"),
            ("redis", redis_tls, "a rediss:// RCR_REDIS_URL"),
        ):
            files = {
                name: getattr(self, f"{prefix}_ssl_{name}")
                for name in ("cafile", "certfile", "keyfile")
            }
            given = [env_name(f"{prefix}_ssl_{name}") for name, path in files.items() if path]
            if given and not tls:
                raise ValueError(f"{', '.join(given)} only apply with {needs}")
            if bool(files["certfile"]) != bool(files["keyfile"]):
                raise ValueError(
                    f"{env_name(prefix + '_ssl_certfile')} and "
                    f"{env_name(prefix + '_ssl_keyfile')} go together (mutual TLS)"
                )

    # Parsed views, for code that wants numbers rather than strings.
    @cached_property
    def window_names(self) -> tuple[str, ...]:
        return tuple(self.windows.split(","))

    @cached_property
    def window_ms(self) -> dict[str, int]:
        return {name: parse_duration_ms(name) for name in self.window_names}

    @property
    def repeat_interval_ms(self) -> int:
        return parse_duration_ms(self.repeat_interval)

    @property
    def burst_window_ms(self) -> int:
        return parse_duration_ms(self.burst_window)

    @property
    def max_clock_skew_ms(self) -> int:
        return parse_duration_ms(self.max_clock_skew)

    @property
    def broker_host_port(self) -> tuple[str, int]:
        first = urlsplit(self.broker.split(";")[0].strip())
        return first.hostname or "localhost", first.port or 9092

    @property
    def bootstrap_servers(self) -> str:
        """The broker URL(s) as Kafka clients take them: ``host:port,host:port``."""
        return ",".join(urlsplit(url.strip()).netloc for url in self.broker.split(";"))


def redacted_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with explicit overrides (CLI flags) on top.

    Any bad value raises ``ConfigError`` naming every offending variable.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            name = env_name(field) if field else "configuration"
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {message}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from None
