#!/usr/bin/env python3
"""Write the Grafana dashboards of rcr-stream as JSON: deploy/grafana/dashboards/*.json.

Dashboards as code, standard library only. Edit this file, never the JSON, then run

    python deploy/grafana/generate.py           # rewrite the JSON files
    python deploy/grafana/generate.py --check   # exit 1 if the committed JSON is stale

Panel colours for freshness, lag, dead letters and the spike factor come from the alert
thresholds in deploy/prometheus/rules/thresholds.yml, so the boards turn red where the alerts
fire. The queries read the recording rules (rcr:*) of deploy/prometheus/rules/recording.yml:
cluster-wide figures from summed numerators and denominators, never averages of ratios.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "dashboards"
THRESHOLDS_FILE = HERE.parent / "prometheus" / "rules" / "thresholds.yml"

DATASOURCE_UID = "rcr-prometheus"  # provisioning/datasources/prometheus.yml
DS = {"type": "prometheus", "uid": "${datasource}"}
TAGS = ["rcr-stream"]
ALL = 'channel="all", reason="all"'
SPIKE_ALERTS = "RcrRepeatContactRateSpike|RcrContactRateSpike"

Json = dict[str, Any]


def load_thresholds(path: Path = THRESHOLDS_FILE) -> dict[str, float]:
    """``rcr:threshold:NAME`` -> value, from the constant recording rules."""
    pattern = re.compile(
        r"-\s*record:\s*rcr:threshold:(\w+)\s*\n\s*expr:\s*vector\(\s*([-+0-9.eE]+)\s*\)"
    )
    found = {name: float(value) for name, value in pattern.findall(path.read_text())}
    if not found:
        raise SystemExit(f"no rcr:threshold:* rules found in {path}")
    return found


# --- building blocks ------------------------------------------------------------------------


def steps(*pairs: tuple[float | None, str]) -> Json:
    """Absolute thresholds: (None, base colour), (value, colour), ..."""
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for value, color in pairs],
    }


NEUTRAL = steps((None, "text"))


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> Json:
    out: Json = {
        "datasource": DS,
        "refId": ref,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
    }
    if instant:
        out["format"] = "table"
    return out


def targets(*specs: tuple[str, str]) -> list[Json]:
    return [target(expr, legend, ref=chr(ord("A") + i)) for i, (expr, legend) in enumerate(specs)]


class Layout:
    """Hands out panel ids and grid positions, left to right, top to bottom (24 columns)."""

    def __init__(self) -> None:
        self.next_id = 1
        self.x = 0
        self.y = 0
        self.row_h = 0

    def place(self, w: int, h: int) -> tuple[int, Json]:
        if self.x + w > 24:
            self.newline()
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_h = max(self.row_h, h)
        panel_id = self.next_id
        self.next_id += 1
        return panel_id, pos

    def newline(self) -> None:
        self.y += self.row_h
        self.x = 0
        self.row_h = 0

    def row(self, title: str) -> Json:
        self.newline()
        panel_id, pos = self.place(24, 1)
        self.newline()
        return {
            "id": panel_id,
            "type": "row",
            "title": title,
            "collapsed": False,
            "gridPos": pos,
            "panels": [],
        }


def panel(
    layout: Layout,
    kind: str,
    title: str,
    description: str,
    w: int,
    h: int,
    tgts: list[Json],
    unit: str,
    *,
    thresholds: Json = NEUTRAL,
    options: Json | None = None,
    custom: Json | None = None,
    mappings: list[Json] | None = None,
    overrides: list[Json] | None = None,
    extra_defaults: Json | None = None,
    transformations: list[Json] | None = None,
) -> Json:
    panel_id, pos = layout.place(w, h)
    defaults: Json = {"unit": unit, "thresholds": thresholds, "mappings": mappings or []}
    if custom is not None:
        defaults["custom"] = custom
    defaults.update(extra_defaults or {})
    out: Json = {
        "id": panel_id,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": pos,
        "targets": tgts,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
    }
    if transformations:
        out["transformations"] = transformations
    return out


def stat(
    layout: Layout,
    title: str,
    description: str,
    expr: str,
    unit: str,
    *,
    thresholds: Json = NEUTRAL,
    w: int = 4,
    h: int = 4,
    graph: bool = True,
    mappings: list[Json] | None = None,
    no_value: str = "No data",
    decimals: int | None = None,
) -> Json:
    extra: Json = {"noValue": no_value, "color": {"mode": "thresholds"}}
    if decimals is not None:
        extra["decimals"] = decimals
    return panel(
        layout,
        "stat",
        title,
        description,
        w,
        h,
        [target(expr, title)],
        unit,
        thresholds=thresholds,
        mappings=mappings,
        extra_defaults=extra,
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background" if thresholds is not NEUTRAL else "value",
            "graphMode": "area" if graph else "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "value",
        },
    )


def timeseries(
    layout: Layout,
    title: str,
    description: str,
    tgts: list[Json],
    unit: str,
    *,
    w: int = 12,
    h: int = 8,
    thresholds: Json = NEUTRAL,
    threshold_line: bool = False,
    stack: bool = False,
    min_zero: bool = True,
    overrides: list[Json] | None = None,
) -> Json:
    custom = {
        "drawStyle": "line",
        "lineWidth": 2,
        "fillOpacity": 20 if stack else 5,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "dashed" if threshold_line else "off"},
    }
    extra: Json = {"color": {"mode": "palette-classic"}}
    if min_zero:
        extra["min"] = 0
    return panel(
        layout,
        "timeseries",
        title,
        description,
        w,
        h,
        tgts,
        unit,
        thresholds=thresholds,
        custom=custom,
        overrides=overrides,
        extra_defaults=extra,
        options={
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


def state_timeline(
    layout: Layout,
    title: str,
    description: str,
    tgts: list[Json],
    mappings: list[Json],
    *,
    w: int = 12,
    h: int = 8,
) -> Json:
    return panel(
        layout,
        "state-timeline",
        title,
        description,
        w,
        h,
        tgts,
        "none",
        mappings=mappings,
        custom={"lineWidth": 0, "fillOpacity": 80},
        extra_defaults={"color": {"mode": "thresholds"}},
        options={
            "mergeValues": True,
            "showValue": "auto",
            "alignValue": "left",
            "rowHeight": 0.9,
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
            "tooltip": {"mode": "single", "sort": "none"},
        },
    )


def value_map(*entries: tuple[str, str, str]) -> list[Json]:
    """Value mappings: (value, text, colour)."""
    return [
        {
            "type": "value",
            "options": {
                value: {"text": text, "color": color, "index": i}
                for i, (value, text, color) in enumerate(entries)
            },
        }
    ]


def dashed_red(name_regex: str) -> Json:
    """Override: series whose name matches drawn as a dashed red line (a threshold)."""
    return {
        "matcher": {"id": "byRegexp", "options": name_regex},
        "properties": [
            {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
            {"id": "custom.fillOpacity", "value": 0},
        ],
    }


def datasource_variable() -> Json:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {"selected": False, "text": "Prometheus", "value": DATASOURCE_UID},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
    }


def window_variable() -> Json:
    query = "label_values(rcr:customers:sum, window)"
    return {
        "name": "window",
        "label": "Window",
        "type": "query",
        "datasource": DS,
        "query": query,  # the plain string form: every Grafana version reads it
        "definition": query,
        "current": {"selected": False, "text": "24h", "value": "24h"},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 2,
        "regex": "",
        "sort": 0,
        "skipUrlSync": False,
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Json],
    variables: list[Json],
    annotations: list[Json] | None = None,
) -> Json:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": TAGS,
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "links": [
            {
                "title": "rcr-stream",
                "type": "dashboards",
                "tags": TAGS,
                "asDropdown": False,
                "includeVars": True,
                "keepTime": True,
                "icon": "external link",
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }
        ],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                *(annotations or []),
            ]
        },
        "templating": {"list": variables},
        "panels": panels,
    }


# --- the launch-day board -------------------------------------------------------------------


def launch_day(t: dict[str, float]) -> Json:
    lay = Layout()
    factor = t["repeat_contact_rate_spike_factor"]
    contact_factor = t["contact_rate_spike_factor"]
    max_age = t["max_event_age_seconds"]
    max_lag = t["consumer_lag_records"]
    dlq_ratio = t["dead_letter_ratio"]
    ratio_colours = steps((None, "green"), (1 + (factor - 1) / 2, "orange"), (factor, "red"))
    freshness = steps((None, "green"), (max_age / 3, "orange"), (max_age, "red"))
    panels: list[Json] = [lay.row("Now")]
    panels += [
        stat(
            lay,
            "Repeat contact rate, last hour",
            "Customers with two or more inbound contacts in the last hour / customers with "
            "at least one, all channels and reasons.",
            f'rcr:repeat_contact_rate:ratio{{window="1h", {ALL}}}',
            "percentunit",
            decimals=1,
        ),
        stat(
            lay,
            "Repeat contact rate vs baseline",
            "Last hour's repeat contact rate divided by its baseline (same hour last week, "
            f"or yesterday). RcrRepeatContactRateSpike fires from {factor:g}x (and +"
            f"{t['repeat_contact_rate_spike_min_increase']:g} absolute) held for 15 minutes.",
            f'rcr:repeat_contact_rate:ratio{{window="1h", {ALL}}}'
            f' / rcr:repeat_contact_rate:baseline{{window="1h", {ALL}}}',
            "suffix:x",
            thresholds=ratio_colours,
            decimals=2,
            no_value="no baseline yet",
        ),
        stat(
            lay,
            "Contact rate, last hour",
            "Inbound contacts in the last hour / active customer base (segment all).",
            'rcr:contact_rate:ratio{window="1h"}',
            "percentunit",
            decimals=2,
            no_value="no customer base",
        ),
        stat(
            lay,
            "Contacts per minute",
            "Accepted contact records per minute over the last 5 minutes, all workers "
            "(processing time: a replay shows here as a burst).",
            'sum(rcr:events:rate5m{outcome="accepted"}) * 60',
            "cpm",
            decimals=0,
        ),
        stat(
            lay,
            "Newest event age",
            "Seconds since the newest contact event time any worker has processed. "
            f"RcrNoEventsArriving fires above {max_age:g} s.",
            "rcr:last_event_age:seconds",
            "s",
            thresholds=freshness,
            graph=False,
            no_value="no events",
        ),
        stat(
            lay,
            "Spike alerts firing",
            "Repeat contact rate and contact rate spike alerts currently firing.",
            f'count(ALERTS{{alertname=~"{SPIKE_ALERTS}", alertstate="firing"}}) or vector(0)',
            "none",
            thresholds=steps((None, "green"), (1, "red")),
            graph=False,
        ),
    ]

    panels.append(lay.row("Per window (all channels and reasons)"))
    columns = [
        ("A", f"rcr:repeat_contact_rate:ratio{{{ALL}}}", "Repeat contact rate", "percentunit"),
        ("B", "rcr:contact_rate:ratio", "Contact rate", "percentunit"),
        (
            "C",
            f"rcr:repeat_contacts_per_contact:ratio{{{ALL}}}",
            "Repeat contacts / contacts",
            "percentunit",
        ),
        ("D", f"rcr:customers:sum{{{ALL}}}", "Customers", "short"),
        ("E", f"rcr:repeat_customers:sum{{{ALL}}}", "Repeat customers", "short"),
        ("F", f"rcr:contacts:sum{{{ALL}}}", "Contacts", "short"),
    ]
    panels.append(
        panel(
            lay,
            "table",
            "Figures per window",
            "Every window at once: rolling windows (1h, 24h, 7d, 30d), calendar periods to date "
            "(day, week, month, in RCR_TIMEZONE) and the last closed ones (previous_*).",
            24,
            9,
            [target(expr, "", ref, instant=True) for ref, expr, _, _ in columns],
            "short",
            options={
                "showHeader": True,
                "cellHeight": "sm",
                "footer": {"show": False, "reducer": ["sum"], "fields": ""},
                "sortBy": [{"displayName": "window", "desc": False}],
            },
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {
                            "Time": True,
                            "channel": True,
                            "reason": True,
                            "definition": True,
                        },
                        "indexByName": {
                            "window": 0,
                            **{f"Value #{ref}": i + 1 for i, (ref, _, _, _) in enumerate(columns)},
                        },
                        "renameByName": {f"Value #{ref}": name for ref, _, name, _ in columns},
                    },
                },
            ],
            overrides=[
                {
                    "matcher": {"id": "byName", "options": name},
                    "properties": [
                        {"id": "unit", "value": unit},
                        {"id": "decimals", "value": 1 if unit == "percentunit" else 0},
                    ],
                }
                for _, _, name, unit in columns
            ],
        )
    )

    panels.append(lay.row("Last hour against the baseline"))
    panels += [
        timeseries(
            lay,
            "Repeat contact rate, last hour",
            "The rolling last hour against its baseline and the spike line "
            f"(baseline x {factor:g}).",
            targets(
                (f'rcr:repeat_contact_rate:ratio{{window="1h", {ALL}}}', "last hour"),
                (
                    f'rcr:repeat_contact_rate:baseline{{window="1h", {ALL}}}',
                    "baseline (same hour last week or yesterday)",
                ),
                (
                    f'rcr:repeat_contact_rate:baseline{{window="1h", {ALL}}}'
                    " * on() group_left() rcr:threshold:repeat_contact_rate_spike_factor",
                    "spike line",
                ),
            ),
            "percentunit",
            overrides=[dashed_red("spike line")],
        ),
        timeseries(
            lay,
            "Contact rate, last hour",
            "Contacts in the rolling last hour / customer base, against its baseline "
            f"and the spike line (baseline x {contact_factor:g}).",
            targets(
                ('rcr:contact_rate:ratio{window="1h"}', "last hour"),
                (
                    'rcr:contact_rate:baseline{window="1h"}',
                    "baseline (same hour last week or yesterday)",
                ),
                (
                    'rcr:contact_rate:baseline{window="1h"}'
                    " * on() group_left() rcr:threshold:contact_rate_spike_factor",
                    "spike line",
                ),
            ),
            "percentunit",
            overrides=[dashed_red("spike line")],
        ),
    ]

    panels.append(lay.row("Per channel and reason ($window)"))
    panels += [
        timeseries(
            lay,
            "Repeat contact rate per channel ($window)",
            "Per channel, all reasons. Channels beyond RCR_MAX_LABEL_VALUES are "
            'folded into "other".',
            targets(
                (
                    'rcr:repeat_contact_rate:ratio{window="$window", reason="all", channel!="all"}',
                    "{{channel}}",
                )
            ),
            "percentunit",
        ),
        timeseries(
            lay,
            "Repeat contact rate per reason ($window)",
            "Per contact reason, all channels. A launch problem usually shows here first.",
            targets(
                (
                    'rcr:repeat_contact_rate:ratio{window="$window", channel="all", reason!="all"}',
                    "{{reason}}",
                )
            ),
            "percentunit",
        ),
        timeseries(
            lay,
            "Contacts per channel ($window)",
            "Inbound contacts in the window per channel (the contact rate exists only "
            "for all channels and reasons).",
            targets(
                ('rcr:contacts:sum{window="$window", reason="all", channel!="all"}', "{{channel}}")
            ),
            "short",
            stack=True,
        ),
        timeseries(
            lay,
            "Contacts per reason ($window)",
            "Inbound contacts in the window per reason.",
            targets(
                ('rcr:contacts:sum{window="$window", channel="all", reason!="all"}', "{{reason}}")
            ),
            "short",
            stack=True,
        ),
    ]

    panels.append(lay.row("Extra dimensions ($window)"))
    panels += [
        timeseries(
            lay,
            "Repeat contact rate per extra dimension ($window)",
            "Per value of each extra dimension of RCR_DIMENSIONS (queue by default; values "
            'beyond RCR_MAX_LABEL_VALUES are folded into "other"). Never crossed with '
            "channel or reason.",
            targets(
                (
                    'rcr:dimension_repeat_contact_rate:ratio{window="$window"}',
                    "{{dimension}}={{value}}",
                )
            ),
            "percentunit",
        ),
        timeseries(
            lay,
            "Contacts per extra dimension ($window)",
            "Inbound contacts in the window per value of each extra dimension.",
            targets(('rcr:dimension_contacts:sum{window="$window"}', "{{dimension}}={{value}}")),
            "short",
            stack=True,
        ),
    ]

    panels.append(lay.row("First-contact resolution ($window)"))
    panels += [
        timeseries(
            lay,
            "First-contact resolution ($window)",
            "Of the window's contacts whose repeat interval has passed, the share no "
            "follow-up came within. Contacts younger than the interval are provisional and "
            "left out; the second line is the share of the window already judged.",
            targets(
                (
                    f'rcr:first_contact_resolution:ratio{{window="$window", {ALL}}}',
                    "resolved first time",
                ),
                ('rcr:resolution_maturity:ratio{window="$window"}', "share of window judged"),
            ),
            "percentunit",
            w=8,
        ),
        timeseries(
            lay,
            "Which first contacts fail: per channel ($window)",
            "Share of matured contacts a follow-up came within, by the channel of the first "
            "contact (whatever channel the follow-up used).",
            targets(
                (
                    "1 - rcr:first_contact_resolution:ratio"
                    '{window="$window", reason="all", channel!="all"}',
                    "{{channel}}",
                )
            ),
            "percentunit",
            w=8,
        ),
        timeseries(
            lay,
            "Which first contacts fail: per reason ($window)",
            "Share of matured contacts a follow-up came within, by the reason of the first "
            "contact.",
            targets(
                (
                    "1 - rcr:first_contact_resolution:ratio"
                    '{window="$window", channel="all", reason!="all"}',
                    "{{reason}}",
                )
            ),
            "percentunit",
            w=8,
        ),
        timeseries(
            lay,
            "Repeat contact rate per definition ($window)",
            "Every repeat definition of RCR_DEFINITIONS side by side (by customer, by customer "
            "and reason, other intervals). No data when only one definition is configured.",
            targets(
                (
                    f'rcr:definition_repeat_contact_rate:ratio{{window="$window", {ALL}}}',
                    "{{definition}}",
                )
            ),
            "percentunit",
        ),
        timeseries(
            lay,
            "First-contact resolution per definition ($window)",
            "First-contact resolution under every repeat definition of RCR_DEFINITIONS.",
            targets(
                (
                    f'rcr:definition_first_contact_resolution:ratio{{window="$window", {ALL}}}',
                    "{{definition}}",
                )
            ),
            "percentunit",
        ),
    ]

    panels.append(lay.row("Contacts per order, per subscriber, ... ($window)"))
    panels += [
        timeseries(
            lay,
            "Contacts per denominator ($window)",
            "Contacts in the window (all channels and reasons) per unit of each denominator "
            "of RCR_DENOMINATORS: a count of events in the same window (orders) or the "
            "latest value of a snapshot (active subscribers). No data without any.",
            targets(('rcr:contacts_per_denominator:ratio{window="$window"}', "{{name}}")),
            "short",
        ),
        timeseries(
            lay,
            "Denominators ($window)",
            "Events of each count denominator in the window, and the latest value of each "
            "snapshot one. Every worker reads every denominator topic: the same on all.",
            targets(
                (
                    'max by (name) (rcr_denominator{window=~"$window|latest"})',
                    "{{name}}",
                )
            ),
            "short",
        ),
    ]

    panels.append(lay.row("Traffic, alerts and pipeline"))
    panels += [
        timeseries(
            lay,
            "Contacts per minute",
            "Accepted contact records per minute (processing time), all workers.",
            targets(('sum(rcr:events:rate5m{outcome="accepted"}) * 60', "contacts")),
            "cpm",
            w=8,
        ),
        state_timeline(
            lay,
            "Spike alerts",
            "Pending (held for less than 15 minutes) and firing spike alerts, per channel "
            "and reason.",
            targets(
                (
                    f"max by (alertname, channel, reason) (2 * ALERTS{{alertname=~"
                    f'"{SPIKE_ALERTS}", alertstate="firing"}} or ALERTS{{alertname=~'
                    f'"{SPIKE_ALERTS}", alertstate="pending"}})',
                    "{{alertname}} {{channel}}/{{reason}}",
                )
            ),
            value_map(("1", "pending", "orange"), ("2", "firing", "red")),
            w=8,
        ),
        timeseries(
            lay,
            "Newest event age",
            f"Seconds since the newest event time; the dashed line is the "
            f"RcrNoEventsArriving threshold ({max_age:g} s).",
            targets(("rcr:last_event_age:seconds", "age")),
            "s",
            w=8,
            thresholds=steps((None, "green"), (max_age, "red")),
            threshold_line=True,
        ),
        timeseries(
            lay,
            "Consumer lag",
            "Records behind the end of each topic, all partitions. "
            f"RcrConsumerLagGrowing fires above {max_lag:g} records when growing.",
            targets(("rcr:consumer_lag_records:sum", "{{topic}}")),
            "short",
            thresholds=steps((None, "green"), (max_lag, "red")),
            threshold_line=True,
        ),
        timeseries(
            lay,
            "Dead letters per minute by reason",
            "Records rejected to the dead-letter topic, per reason. RcrDeadLetterRateHigh "
            f"fires above {dlq_ratio:.0%} of all records.",
            targets(('sum by (reason) (rcr:events:rate5m{outcome="rejected"}) * 60', "{{reason}}")),
            "cpm",
            stack=True,
        ),
    ]
    annotations = [
        {
            "name": "rcr-stream alerts firing",
            "datasource": DS,
            "enable": True,
            "hide": False,
            "iconColor": "red",
            "expr": 'ALERTS{alertname=~"Rcr.+", alertstate="firing"}',
            "step": "1m",
            "titleFormat": "{{alertname}}",
            "textFormat": "{{channel}} {{reason}} {{topic}} {{instance}}",
            "tagKeys": "severity",
            "useValueForTime": False,
        }
    ]
    return dashboard(
        "rcr-launch-day",
        "rcr-stream: launch day",
        "Live repeat contact rate and contact rate of support, with spike alerts and the "
        "health of the pipeline that computes them.",
        panels,
        [datasource_variable(), window_variable()],
        annotations,
    )


# --- the pipeline-health board --------------------------------------------------------------


def pipeline_health(t: dict[str, float]) -> Json:
    lay = Layout()
    max_age = t["max_event_age_seconds"]
    max_lag = t["consumer_lag_records"]
    dlq_ratio = t["dead_letter_ratio"]
    up_down = value_map(("0", "down", "red"), ("1", "up", "green"))
    ready = value_map(("0", "not ready", "red"), ("1", "ready", "green"))
    rate = "$__rate_interval"
    panels: list[Json] = [lay.row("Workers")]
    panels += [
        stat(
            lay,
            "Workers scraped",
            "Workers Prometheus scrapes successfully (job rcr-worker).",
            'sum(up{job="rcr-worker"})',
            "none",
            graph=False,
            thresholds=steps((None, "red"), (1, "green")),
        ),
        stat(
            lay,
            "Workers ready",
            "Workers whose /readyz says ready (rcr_ready).",
            "sum(rcr_ready)",
            "none",
            graph=False,
            thresholds=steps((None, "red"), (1, "green")),
        ),
        stat(
            lay,
            "Broker reachable",
            "1 when every worker reaches Kafka (min of rcr_broker_up).",
            "min(rcr_broker_up)",
            "none",
            graph=False,
            mappings=up_down,
            thresholds=steps((None, "red"), (1, "green")),
        ),
        stat(
            lay,
            "Redis reachable",
            "1 when every worker reaches Redis (min of rcr_redis_up).",
            "min(rcr_redis_up)",
            "none",
            graph=False,
            mappings=up_down,
            thresholds=steps((None, "red"), (1, "green")),
        ),
        stat(
            lay,
            "Records per second",
            "Records processed per second, every outcome.",
            "sum(rcr:events:rate5m)",
            "cps",
            decimals=1,
        ),
        stat(
            lay,
            "Dead-letter ratio",
            "Share of records rejected over 5 minutes. "
            f"RcrDeadLetterRateHigh fires above {dlq_ratio:.0%}.",
            "rcr:events_rejected:ratio_rate5m",
            "percentunit",
            decimals=2,
            thresholds=steps((None, "green"), (dlq_ratio, "red")),
            no_value="no traffic",
        ),
        state_timeline(
            lay,
            "Readiness per worker",
            "rcr_ready per worker over time.",
            targets(("rcr_ready", "{{instance}}")),
            ready,
        ),
        state_timeline(
            lay,
            "Broker and Redis per worker",
            "rcr_broker_up and rcr_redis_up per worker over time.",
            targets(
                ("rcr_broker_up", "{{instance}} broker"), ("rcr_redis_up", "{{instance}} redis")
            ),
            up_down,
        ),
    ]

    panels.append(lay.row("Records"))
    panels += [
        timeseries(
            lay,
            "Records by outcome",
            "accepted, duplicate (same contact_id again), ignored (outbound), chained (a "
            "further leg of a contact chain), abandoned and short_abandoned (left out by "
            "RCR_EXCLUDE_ABANDONED), anonymous (no customer), rejected (dead-lettered).",
            targets(("sum by (outcome) (rcr:events:rate5m)", "{{outcome}}")),
            "cps",
            stack=True,
        ),
        timeseries(
            lay,
            "Dead letters by reason",
            "Rejected records per second by reason (invalid_json, missing_field, "
            "bad_type, bad_timestamp, too_late, too_far_in_future, too_large).",
            targets(('sum by (reason) (rcr:events:rate5m{outcome="rejected"})', "{{reason}}")),
            "cps",
            stack=True,
        ),
        timeseries(
            lay,
            "Identity coverage",
            "Share of the inbound contacts processed that are linked to a customer (accepted, "
            "duplicate, chained) rather than anonymous (null, blank or placeholder "
            "customer_id: RCR_ANONYMOUS_CUSTOMER_IDS). Anonymous contacts are in no figure: "
            "a falling line means the figures describe fewer of the contacts.",
            targets(
                ("rcr:identity_coverage:ratio_rate1h", "last hour"),
                ("rcr:identity_coverage:ratio_rate1d", "last day"),
            ),
            "percentunit",
        ),
        timeseries(
            lay,
            "Event lag quantiles",
            "Wall clock minus event time when a record is processed (histogram "
            "rcr_event_lag_seconds, all workers).",
            targets(
                *[
                    (
                        f"histogram_quantile({q}, sum by (le) "
                        f"(rate(rcr_event_lag_seconds_bucket[{rate}])))",
                        f"p{label}",
                    )
                    for q, label in (("0.5", "50"), ("0.9", "90"), ("0.99", "99"))
                ]
            ),
            "s",
        ),
        timeseries(
            lay,
            "Newest event age",
            f"Seconds since the newest event time; RcrNoEventsArriving above {max_age:g} s.",
            targets(("rcr:last_event_age:seconds", "age")),
            "s",
            thresholds=steps((None, "green"), (max_age, "red")),
            threshold_line=True,
        ),
    ]

    panels.append(
        timeseries(
            lay,
            "Denominator records by outcome",
            "Records of the RCR_DENOMINATORS topics per second, per worker summed: accepted, "
            "rejected (cannot be counted: skipped, not dead-lettered), too_late, "
            "too_far_in_future. Every worker reads every record.",
            targets(
                (
                    f"sum by (name, outcome) (rate(rcr_denominator_records_total[{rate}]))",
                    "{{name}} {{outcome}}",
                )
            ),
            "cps",
            w=24,
        )
    )

    panels.append(lay.row("Kafka consumer and Redis"))
    panels += [
        timeseries(
            lay,
            "Consumer lag per partition",
            f"Records behind the end of each partition. The alert threshold "
            f"({max_lag:g}) applies to the sum per topic.",
            targets(
                ("sum by (topic, partition) (rcr_consumer_lag_records)", "{{topic}}/{{partition}}")
            ),
            "short",
        ),
        timeseries(
            lay,
            "Consumer lag per worker",
            "Records behind, per worker: one worker far behind the others points to a "
            "hot or stuck partition.",
            targets(("sum by (instance) (rcr_consumer_lag_records)", "{{instance}}")),
            "short",
        ),
        timeseries(
            lay,
            "Redis write errors",
            "Failed Redis pipeline writes per second, per worker. The Prometheus "
            "figures do not depend on Redis.",
            targets(
                (f"sum by (instance) (rate(rcr_redis_write_errors_total[{rate}]))", "{{instance}}")
            ),
            "cps",
        ),
        timeseries(
            lay,
            "Faust rebalances",
            "Consumer-group rebalances seen by each worker (faust_total_rebalances); "
            "climbing steadily means workers keep joining and leaving.",
            targets(("max by (instance) (faust_total_rebalances)", "{{instance}}")),
            "short",
        ),
    ]

    panels.append(lay.row("Faust"))
    panels += [
        timeseries(
            lay,
            "Messages received and sent",
            "Faust's own counters per worker: records received from and sent to Kafka "
            "(changelog, repartition, dead letters).",
            targets(
                (
                    f"sum by (instance) (rate(faust_messages_received_total[{rate}]))",
                    "{{instance}} received",
                ),
                (
                    f"sum by (instance) (rate(faust_total_sent_messages_total[{rate}]))",
                    "{{instance}} sent",
                ),
            ),
            "cps",
            w=8,
        ),
        timeseries(
            lay,
            "Batch processing time p99",
            "Time the worker takes per batch of events (validate, count, persist), "
            "99th percentile over all workers.",
            targets(
                (
                    f"histogram_quantile(0.99, sum by (le) "
                    f"(rate(rcr_batch_processing_seconds_bucket[{rate}])))",
                    "p99",
                )
            ),
            "s",
            w=8,
        ),
        timeseries(
            lay,
            "Offset commit latency p99",
            "Time Faust takes to commit consumer offsets, 99th percentile.",
            targets(
                (
                    f"histogram_quantile(0.99, sum by (le) "
                    f"(rate(faust_consumer_commit_latency_bucket[{rate}])))",
                    "p99",
                )
            ),
            "ms",
            w=8,
        ),
    ]
    return dashboard(
        "rcr-pipeline-health",
        "rcr-stream: pipeline health",
        "Workers, records by outcome, event and consumer lag, Redis and Faust internals.",
        panels,
        [datasource_variable()],
    )


DASHBOARDS = {
    "rcr-launch-day.json": launch_day,
    "rcr-pipeline-health.json": pipeline_health,
}


def render() -> dict[str, str]:
    thresholds = load_thresholds()
    return {
        name: json.dumps(build(thresholds), indent=2, sort_keys=True) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if a committed file differs"
    )
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = OUT_DIR / name
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(name)
        else:
            OUT_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(HERE.parent.parent)}")
    if stale:
        print(
            "stale, run `python deploy/grafana/generate.py`: " + ", ".join(stale), file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
