"""Named constants: every limit, TTL and default the service relies on, in one place."""

MAX_CONTENT_LENGTH = 1024 * 1024
"""Largest request body accepted, in bytes (larger is 413)."""

USER_TOKEN_TTL_SECONDS = 3600
"""Lifetime of a user token when the request names none."""

USER_TOKEN_MAX_TTL_SECONDS = 86400
"""Longest lifetime a user token may be minted with."""

USER_TOKEN_AUDIENCE = "notify:user"  # noqa: S105 - a claim value, not a secret
"""JWT audience of user tokens, so no other token signed with the same secret passes."""

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
"""How long an Idempotency-Key replays its first response."""

IDEMPOTENCY_KEY_MAX_LENGTH = 255
"""Longest Idempotency-Key header accepted."""

MAX_RECIPIENTS = 10_000
"""Most recipients one POST /notifications may name."""

MAX_TITLE_LENGTH = 200
"""Longest notification title."""

MAX_BODY_LENGTH = 5_000
"""Longest notification body."""

MAX_DATA_BYTES = 16 * 1024
"""Largest `data` object, measured as compact JSON in UTF-8."""

MAX_ACTION_URL_LENGTH = 2_048
"""Longest action_url."""

DEFAULT_CATEGORY = "general"
"""Category of a notification that names none."""

PAGE_SIZE_DEFAULT = 20
"""Inbox page size when the request names none."""

PAGE_SIZE_MAX = 100
"""Largest inbox page."""

CATCH_UP_MAX = 100
"""Most notifications one `after=` call returns; the client pages on from the last id."""

SEEN_IDS_MAX = 1_000
"""Most ids one POST /me/notifications/seen may name."""

API_KEY_PREFIX = "nk_"
"""Leading text of every API key, so keys are recognisable in logs and secret scanners."""

DATABASE_CONNECT_TIMEOUT_SECONDS = 5
"""How long a new PostgreSQL connection may take before the request fails with 503."""

READINESS_TIMEOUT_SECONDS = 2.0
"""How long /readyz waits for each dependency before calling it down."""

MAX_CONNECTIONS = 16_384
"""Concurrent connections one web process serves (eventlet's own default is 1,024), sized for
10,000 sockets with room for reconnect storms. Needs as many open files (`ulimit -n`)."""

DELIVERY_MAX_ATTEMPTS = 5
"""Tries of one channel delivery before it is `failed` (transient errors only; a permanent
error fails at once)."""

DELIVERY_RETRY_BASE_SECONDS = 5.0
"""Wait before the second try; each later try waits twice as long, with full jitter."""

DELIVERY_RETRY_MAX_SECONDS = 600.0
"""Longest wait between two tries."""

DELIVERY_JOB_TIMEOUT_SECONDS = 45
"""How long one delivery job may run before RQ stops it."""

DELIVERY_LEASE_SECONDS = 60
"""How long a worker holds a delivery it is sending; past it (the worker died) the relay
hands the delivery to another worker. Longer than the job timeout."""

RELAY_INTERVAL_SECONDS = 10.0
"""How often the relay looks for deliveries that are due but have no job."""

RELAY_GRACE_SECONDS = 10.0
"""How long after a delivery is due the relay leaves it to the normal enqueue; with the
interval, a delivery whose enqueue was lost is picked up within 20 seconds."""

RELAY_BATCH = 500
"""Most deliveries one relay pass re-enqueues."""

CHANNEL_TIMEOUT_SECONDS = 10.0
"""Connect and read timeout towards SMTP servers and SMS, push and webhook endpoints."""

QUEUES = ("critical", "high", "default", "low")
"""RQ queues, most urgent first; a notification's priority picks its queue."""

MAX_TEMPLATE_SOURCE_LENGTH = 20_000
"""Longest Jinja2 source of one template part."""

PUSH_TTL_SECONDS = 86_400
"""How long a push service keeps a message for a browser that is offline."""

TEMPLATE_LOOP_BUDGET = 10_000
"""Most loop turns over `range` one template part may make, nested loops counted together."""

SOCKET_EXPIRY_SWEEP_SECONDS = 15.0
"""How often each web process disconnects the sockets whose user token has expired."""
