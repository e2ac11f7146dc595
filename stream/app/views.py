"""HTTP on Faust's web server: /rates, /customers/{id}, /healthz, /readyz.

(/metrics is Faust's Prometheus page, serving the worker's registry.)
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import orjson
from faust.web import Request, Response, View
from redis.exceptions import RedisError

from stream.engine import TOTAL, Figures
from stream.engine.denominators import DenominatorValues, contacts_per
from stream.engine.figures import json_number
from stream.engine.timeline import dimension_of
from stream.metrics.figures import WindowFigures
from stream.sinks.redis_projection import bursts_key, customer_key, top_customers_key

if TYPE_CHECKING:
    from stream.app.worker import ContactsWorker


def register_views(worker: ContactsWorker) -> None:
    app = worker.app

    @app.page("/healthz")
    async def healthz(web: View, request: Request) -> Response:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: View, request: Request) -> Response:
        health = worker.health
        body = {
            "ready": health.ready,
            "reasons": health.reasons,
            "redis": "up" if worker.redis.healthy else "down",
        }
        return web.json(body, status=200 if health.ready else 503)

    @app.page("/rates")
    async def rates(web: View, request: Request) -> Response:
        snapshot = worker.snapshot()
        base = snapshot.customer_base.get("all")
        headline = snapshot.headline
        maturity = snapshot.maturity.get(headline, {})
        cluster = snapshot.cluster.get(headline, {})
        body = {
            "customer_base": base,
            "definition": headline,
            "cluster": _windows_json(cluster, base, maturity),
            "worker": _windows_json(snapshot.local.get(headline, {}), None, maturity),
            "denominators": _denominators_json(snapshot.denominators, cluster),
        }
        if snapshot.every_definition:
            body["definitions"] = {
                name: _windows_json(figures, base, snapshot.maturity.get(name, {}))
                for name, figures in snapshot.cluster.items()
            }
        return web.json(body)

    @app.page("/customers/{customer_id}")
    async def customer(web: View, request: Request, customer_id: str) -> Response:
        token = worker.settings.api_token
        if token is not None and not _bearer_matches(request, token.get_secret_value()):
            return web.json(
                {"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"}
            )
        try:
            fields = await worker.redis.client.hgetall(
                customer_key(worker.settings.redis_prefix, customer_id)
            )
        except (RedisError, OSError):
            local = worker.customer_view(customer_id)
            if local is None:
                return web.json({"error": "Redis unavailable"}, status=503)
            return web.json({"customer_id": customer_id, **local.fields, "source": "worker"})
        if not fields:
            return web.json({"error": "unknown customer"}, status=404)
        decoded = {_text(k): _text(v) for k, v in fields.items()}
        return web.json({"customer_id": customer_id, **decoded})

    @app.page("/top")
    async def top(web: View, request: Request) -> Response:
        """Top repeat customers of a rolling window (from Redis) and top repeat reasons."""
        if not _authorized(worker, request):
            return _unauthorized(web)
        window = request.query.get("window", worker.settings.window_names[-1])
        if window not in worker.settings.window_names:
            return web.json({"error": f"unknown window {window!r}"}, status=400)
        limit = _limit(request)
        prefix = worker.settings.redis_prefix
        try:
            ranked = cast(
                list[tuple[bytes, float]],
                await worker.redis.client.zrevrange(
                    top_customers_key(prefix, window), 0, limit - 1, withscores=True
                ),
            )
        except (RedisError, OSError):
            return web.json({"error": "Redis unavailable"}, status=503)
        reasons = [
            {
                **trend._asdict(),
                "repeat_contact_rate": json_number(trend.repeat_contact_rate),
                "delta": None
                if trend.previous_rate is None
                else json_number(trend.repeat_contact_rate - trend.previous_rate),
            }
            for trend in worker.top_reasons(limit)
        ]
        return web.json(
            {
                "window": window,
                "customers": [
                    {"customer_id": _text(member), "contacts": int(score)}
                    for member, score in ranked
                ],
                "reasons": reasons,
            }
        )

    @app.page("/bursts")
    async def bursts(web: View, request: Request) -> Response:
        """Customers with many contacts in a short time, newest first."""
        if not _authorized(worker, request):
            return _unauthorized(web)
        try:
            members = cast(
                list[bytes],
                await worker.redis.client.zrevrange(
                    bursts_key(worker.settings.redis_prefix), 0, _limit(request) - 1
                ),
            )
        except (RedisError, OSError):
            return web.json({"error": "Redis unavailable"}, status=503)
        return web.json({"bursts": [orjson.loads(_text(member)) for member in members]})


def _authorized(worker: ContactsWorker, request: Request) -> bool:
    token = worker.settings.api_token
    return token is None or _bearer_matches(request, token.get_secret_value())


def _unauthorized(web: View) -> Response:
    return web.json({"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"})


def _limit(request: Request, default: int = 10, most: int = 100) -> int:
    try:
        return max(1, min(int(request.query.get("limit", default)), most))
    except ValueError:
        return default


def _bearer_matches(request: Request, token: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def _windows_json(
    figures: WindowFigures, base: float | None, maturity: Mapping[str, float]
) -> dict[str, Any]:
    result = {}
    for window, by_label in figures.items():
        entry = _figures_json(by_label.get(TOTAL, Figures()))
        entry["contact_rate"] = json_number(entry["contacts"] / base) if base else None
        entry["resolution_maturity"] = maturity.get(window)
        entry["by_channel"] = {
            channel: _figures_json(f)
            for (channel, reason), f in sorted(by_label.items())
            if reason == "all" and channel != "all"
        }
        entry["by_reason"] = {
            reason: _figures_json(f)
            for (channel, reason), f in sorted(by_label.items())
            if channel == "all" and reason != "all"
        }
        by_dimension: dict[str, dict[str, Any]] = {}
        for label, f in sorted(by_label.items()):
            dimension = dimension_of(label)
            if dimension is not None:
                by_dimension.setdefault(dimension, {})[label[1]] = _figures_json(f)
        entry["by_dimension"] = by_dimension
        result[window] = entry
    return result


def _denominators_json(
    denominators: Mapping[str, DenominatorValues], cluster: WindowFigures
) -> dict[str, Any]:
    """Per denominator and cluster window: its value and contacts per unit (null: unknown)."""
    contacts = {
        window: by_label.get(TOTAL, Figures()).contacts for window, by_label in cluster.items()
    }
    return {
        name: {
            "kind": denominator.kind,
            "windows": {
                window: {
                    "denominator": denominator.of_window(window),
                    "contacts_per": json_number(ratio),
                }
                for window, ratio in contacts_per(denominator, contacts).items()
            },
        }
        for name, denominator in sorted(denominators.items())
    }


def _figures_json(figures: Figures) -> dict[str, Any]:
    return {
        "contacts": figures.contacts,
        "customers": figures.customers,
        "repeat_customers": figures.repeat_customers,
        "repeat_contacts": figures.repeat_contacts,
        "repeat_contact_rate": json_number(figures.repeat_contact_rate),
        "resolved_contacts": figures.resolved_contacts,
        "unresolved_contacts": figures.unresolved_contacts,
        "provisional_contacts": figures.provisional_contacts,
        "first_contact_resolution_rate": json_number(figures.first_contact_resolution_rate),
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
