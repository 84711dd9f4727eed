"""Errors: dead letters, MongoDB writes, API errors, the live feed and Prometheus's scrapes."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from infra.grafana.panels import (
    assemble,
    graph,
    per_deployment,
    quantile,
    query,
    rate,
    recorded,
    series,
    single,
    zero_when_none,
)

TITLE = "PariVision — errors"

REQUESTS = "parivision_api_requests_total"


def build() -> dashboard.Dashboard:
    # Dead letters have labels, so no series exists until the first one: 0 rather than "No data".
    pipeline = [
        graph(
            "Dead letters per second, by stage and reason",
            "Records sent to the dead-letter topic; the reason is a short code (stage none: "
            "nothing dead-lettered).",
            query(
                zero_when_none(
                    per_deployment("sum", rate("parivision_dead_letters_total"), "stage, reason"),
                    "stage",
                ),
                "{{deployment}}: {{stage}} {{reason}}",
            ),
            unit="ops",
        ),
        graph(
            "Dead letters per second, all (5m)",
            "The rate the dead-letter alert watches.",
            query(
                zero_when_none(per_deployment("sum", recorded("parivision:dead_letters:rate5m"))),
                "{{deployment}} dead letters",
            ),
            unit="ops",
        ),
        graph(
            "MongoDB write errors per second",
            "Failed bulk writes; each is retried and nothing is committed past it.",
            query(
                per_deployment("sum", rate("parivision_mongo_write_errors_total")),
                "{{deployment}} write errors",
            ),
            unit="ops",
        ),
        graph(
            "MongoDB write time p99, by collection",
            "One bulk write to MongoDB.",
            query(
                quantile(0.99, "parivision_mongo_write_seconds", "collection"),
                "{{deployment}} {{collection}}",
            ),
            unit="s",
        ),
    ]
    requests = per_deployment("sum", rate(REQUESTS))
    server_errors = per_deployment("sum", rate(REQUESTS, 'status=~"5.."'))
    api = [
        graph(
            "API requests per second, by status",
            "HTTP requests the live API answered.",
            query(per_deployment("sum", rate(REQUESTS), "status"), "{{deployment}} {{status}}"),
            unit="reqps",
            span=8,
        ),
        graph(
            "API 5xx ratio",
            "Share of requests answered with a server error.",
            query(
                # No server error at all is a ratio of 0 (for each deployment answering), not a gap.
                f"({server_errors} or 0 * {requests}) / {requests}",
                "{{deployment}} 5xx",
            ),
            unit="percentunit",
            min_value=0,
            span=8,
        ),
        graph(
            "API latency p99, by route",
            "HTTP request time per route template.",
            query(
                quantile(0.99, "parivision_api_request_seconds", "route"),
                "{{deployment}} {{route}}",
            ),
            unit="s",
            span=8,
        ),
        graph(
            "Live-feed clients and dropped messages",
            "WebSocket clients of the live feed, and messages dropped for clients that fell "
            "behind.",
            query(
                per_deployment("sum", series("parivision_live_clients")), "{{deployment}} clients"
            ),
            query(
                per_deployment("sum", rate("parivision_live_dropped_total")),
                "{{deployment}} dropped /s",
            ),
            span=12,
        ),
        single(
            "Targets up, by job",
            "1 when every target of the job answers Prometheus's scrape; 0 when one is down.",
            query(per_deployment("min", series("up"), "job"), "{{deployment}} {{job}}"),
            span=12,
            steps=((None, "red"), (1, "green")),
            texts={"0": ("down", "red"), "1": ("up", "green")},
        ),
    ]
    return assemble(
        TITLE,
        "parivision-errors",
        "What went wrong: dead letters, MongoDB writes, API errors, the live feed, scrapes.",
        [("Pipeline", pipeline), ("API and scrapes", api)],
    )
