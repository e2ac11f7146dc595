"""One typed settings object: environment variables ``RCR_*``, each also a CLI flag.

A bad value stops start-up with a message naming the variable (``ConfigError``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream.durations import parse_duration_ms
from stream.engine.definitions import Definition, parse_definitions
from stream.engine.exclusions import (
    DEFAULT_ANONYMOUS_CUSTOMER_IDS,
    DEFAULT_SHORT_ABANDON_THRESHOLD,
    parse_anonymous_ids,
)
from stream.engine.validation import MAX_FIELD_CHARS

ENV_PREFIX = "RCR_"
# Event fields with a meaning of their own, and metric label names: no extra dimension.
RESERVED_FIELDS = frozenset(
    {"contact_id", "customer_id", "timestamp", "channel", "reason", "direction", "chain_id"}
    | {"status", "wait_time"}
    | {"all", "window", "definition", "dimension", "value", "segment", "outcome"}
)
MAX_DIMENSIONS = 5


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
    dimensions: str = Field(
        "queue",
        description="extra label dimensions beside channel and reason: event fields,"
        " comma separated (empty: none)",
    )
    definitions: str = Field(
        "",
        description="named repeat definitions, name=customer|customer_reason/interval[@from]"
        " (empty: default=customer/<repeat interval>)",
    )
    customer_base: float | None = Field(
        None, gt=0, description="active customers until the customer-base topic says otherwise"
    )
    max_record_bytes: int = Field(65_536, ge=256, description="larger records are rejected")
    denominators: str = Field(
        "", description="more denominators, name=topic:count|snapshot, comma separated"
    )

    # Exclusions (docs/METRICS.md): valid contacts left out of every figure, counted apart.
    exclude_abandoned: Literal["none", "short", "all"] = Field(
        "none", description="abandoned contacts left out: none, short or all"
    )
    short_abandon_threshold: str = Field(
        DEFAULT_SHORT_ABANDON_THRESHOLD,
        description="an abandoned contact that waited less is short-abandoned",
    )
    anonymous_customer_ids: str = Field(
        DEFAULT_ANONYMOUS_CUSTOMER_IDS,
        description="customer ids meaning no known customer, comma separated, any case",
    )

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

    @field_validator("repeat_interval", "max_clock_skew", "burst_window", "short_abandon_threshold")
    @classmethod
    def _duration_parses(cls, value: str) -> str:
        parse_duration_ms(value)
        return value.strip()

    @field_validator("dimensions")
    @classmethod
    def _dimensions_parse(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        for name in names:
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                raise ValueError(f"{name!r}: a dimension is an event field name like queue")
            if name in RESERVED_FIELDS:
                raise ValueError(f"{name!r} is a field of the contract, not an extra dimension")
        if len(set(names)) != len(names):
            raise ValueError(f"dimensions repeat: {value!r}")
        if len(names) > MAX_DIMENSIONS:
            raise ValueError(f"at most {MAX_DIMENSIONS} extra dimensions (series multiply)")
        return ",".join(names)

    @field_validator("definitions")
    @classmethod
    def _definitions_parse(cls, value: str) -> str:
        if value.strip():
            parse_definitions(value)
        return value.strip()

    @field_validator("anonymous_customer_ids")
    @classmethod
    def _anonymous_ids(cls, value: str) -> str:
        # Empty is allowed: only null and blank customer ids are anonymous then.
        ids = parse_anonymous_ids(value)
        if any(len(name) > MAX_FIELD_CHARS for name in ids):
            raise ValueError(f"a customer id has at most {MAX_FIELD_CHARS} characters")
        return ",".join(sorted(ids))

    @field_validator("denominators")
    @classmethod
    def _denominators_parse(cls, value: str) -> str:
        return ",".join(spec.text for spec in parse_denominators(value))

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
        own = {self.topic, self.dlq_topic, self.customer_base_topic}
        if len(own) != 3:
            raise ValueError("topic, dlq_topic and customer_base_topic must differ")
        for spec in self.denominator_specs:
            if spec.topic in own:
                raise ValueError(
                    f"RCR_DENOMINATORS: {spec.name} reads {spec.topic!r}, a topic the worker "
                    "already uses for contacts, dead letters or the customer base"
                )
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

    @cached_property
    def denominator_specs(self) -> tuple[DenominatorSpec, ...]:
        return parse_denominators(self.denominators)

    @property
    def repeat_interval_ms(self) -> int:
        return parse_duration_ms(self.repeat_interval)

    @property
    def burst_rule(self) -> tuple[int, int]:
        """(contacts, within ms): what makes a burst in the drill-down."""
        return self.burst_contacts, self.burst_window_ms

    @property
    def dimension_names(self) -> tuple[str, ...]:
        return tuple(name for name in self.dimensions.split(",") if name)

    @property
    def repeat_definitions(self) -> tuple[Definition, ...]:
        """``definitions`` parsed; empty means the one default definition."""
        return parse_definitions(self.definitions) if self.definitions else ()

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


DENOMINATOR_KINDS = ("count", "snapshot")
# Names become the value of a metric label and a key of /rates and `rcr compute` output.
_DENOMINATOR_NAME = re.compile(r"[a-z_][a-z0-9_]*")
# Names the metrics already use for the customer base and for totals.
_RESERVED_DENOMINATOR_NAMES = {"customers", "all"}


@dataclass(frozen=True)
class DenominatorSpec:
    """One entry of ``RCR_DENOMINATORS``: ``name=topic:kind``."""

    name: str
    topic: str
    kind: Literal["count", "snapshot"]

    @property
    def text(self) -> str:
        return f"{self.name}={self.topic}:{self.kind}"


def check_denominator_name(name: str) -> None:
    """Names become a metric label value and a JSON key: ValueError unless plain."""
    if not _DENOMINATOR_NAME.fullmatch(name) or name in _RESERVED_DENOMINATOR_NAMES:
        raise ValueError(
            f"denominator name {name!r}: lower case letters, digits and _, "
            "not starting with a digit, not 'customers' or 'all'"
        )


def parse_denominators(text: str) -> tuple[DenominatorSpec, ...]:
    """``orders=orders:count,subscribers=active-subscribers:snapshot`` to specs (ValueError)."""
    specs: list[DenominatorSpec] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        name, equals, rest = entry.partition("=")
        topic, colon, kind = rest.rpartition(":")
        name, topic, kind = name.strip(), topic.strip(), kind.strip()
        if not equals or not colon or not topic:
            raise ValueError(f"expected name=topic:count|snapshot, got {entry!r}")
        check_denominator_name(name)
        if kind not in DENOMINATOR_KINDS:
            raise ValueError(f"denominator {name!r}: kind {kind!r} is neither count nor snapshot")
        if any(spec.name == name for spec in specs):
            raise ValueError(f"denominator name {name!r} appears twice")
        specs.append(DenominatorSpec(name, topic, "count" if kind == "count" else "snapshot"))
    return tuple(specs)


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
