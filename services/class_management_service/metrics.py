"""Every Prometheus metric of the service, defined once."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "cms_http_requests_total",
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "cms_http_request_duration_seconds",
    "HTTP request duration by method and route template.",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
DB_OPERATION_DURATION = Histogram(
    "cms_db_operation_duration_seconds",
    "Repository operation duration.",
    ["operation"],
    buckets=_LATENCY_BUCKETS,
)
DB_OPERATION_ERRORS = Counter(
    "cms_db_operation_errors_total",
    "Repository operations the database failed (unreachable, or an unexpected error), by error"
    " class. Domain outcomes (404, 409, 412...) are cms_db_operation_outcomes_total.",
    ["operation", "error"],
)
DB_OPERATION_OUTCOMES = Counter(
    "cms_db_operation_outcomes_total",
    "Repository operations that ended in a domain outcome, not a failure: the domain error's"
    " code (PRECONDITION_FAILED, STUDENT_ALREADY_EXISTS...) or NOT_FOUND (no row of the user's).",
    ["operation", "outcome"],
)
OUTBOX_DEPTH = Gauge("cms_outbox_pending_events", "Outbox rows not yet published or parked.")
OUTBOX_OLDEST_AGE = Gauge(
    "cms_outbox_oldest_pending_age_seconds", "Age of the oldest pending outbox row."
)
OUTBOX_PUBLISHED = Counter("cms_outbox_published_total", "Outbox events the broker acknowledged.")
OUTBOX_FAILED = Counter(
    "cms_outbox_publish_failures_total", "Failed publish attempts, by kind.", ["kind"]
)
OUTBOX_PARKED = Counter(
    "cms_outbox_parked_total", "Outbox rows given up on after repeated message errors."
)
EVENT_DELIVERY_LAG = Histogram(
    "cms_outbox_delivery_lag_seconds",
    "Time from an outbox row's commit to the broker's acknowledgement.",
    buckets=_LATENCY_BUCKETS,
)
REDIS_ERRORS = Counter("cms_redis_errors_total", "Redis calls that failed, by use.", ["use"])
