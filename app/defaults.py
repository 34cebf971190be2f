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
SEND_BATCH_MAX_RECIPIENTS = 1_000
"""Recipients one transaction takes from the sends waiting to be stored together (a send with
more goes alone)."""
API_KEY_CACHE_SECONDS = 5.0
"""How long a web process trusts an API key it verified without reading it again; revoking a
key takes effect in other processes within this time (0 reads it on every request)."""

DATABASE_CONNECT_TIMEOUT_SECONDS = 5
"""How long a new PostgreSQL connection may take before the request fails with 503."""
DATABASE_POOL_SIZE = 20
"""PostgreSQL connections a process keeps open. Past it, up to DATABASE_MAX_OVERFLOW more are
opened and closed again after use: at SQLAlchemy's default of 5, a web process serving 16
requests at once spent a tenth of its CPU opening and closing connections."""
DATABASE_MAX_OVERFLOW = 10
"""Connections a process may open beyond DATABASE_POOL_SIZE for a burst; requests past both
wait for a free connection."""

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

DELIVERY_BATCH = 100
"""Most rows (deliveries or webhook events) of one priority one job sends: a send's first
tries go out in jobs of this many, so a row costs its send and little of RQ's or the
database's time. A job that runs short of its timeout hands the rest back untried."""

OUTCOME_FLUSH_SECONDS = 0.05
"""How long a job's tried rows may wait before their outcomes are written together: a worker
killed mid-batch sends again only what it sent in this window (fast sends share one write,
slow ones such as emails are written one by one)."""

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

SOCKET_PING_INTERVAL_SECONDS = 25
"""How often the server pings each Socket.IO connection (engine.io's default): below a
proxy's idle timeout, the pings keep quiet sockets open."""

SOCKET_PING_TIMEOUT_SECONDS = 20
"""How long a ping may go unanswered before the server closes the connection."""

SOCKET_CONNECTS_IN_FLIGHT = 10
"""Socket.IO connects one web process works on at once (each reads the database, on a pool of
this many connections of their own); the rest wait their turn in arrival order."""

CONNECT_READS_PING_AFTER_IDLE_SECONDS = 10.0
"""A connection of the connects' pool unused for this long is pinged before its next use (a
server restart or a proxy's idle timeout may have closed it); a busy pool is never pinged."""

RATE_LIMIT_API_KEY = "300 per second; 10000 per minute"
"""Requests one API key may make across the producer routes (Flask-Limiter notation)."""

RATE_LIMIT_USER = "20 per second; 600 per minute"
"""Requests one user may make across the `/me` routes, all their tabs together."""

RATE_LIMIT_SOCKET_CONNECTS = "30 per minute"
"""Socket.IO connections one user may open (a reconnect loop is refused past it)."""

RATE_LIMIT_SOCKET_EVENTS = "10 per second"
"""Events one Socket.IO connection may send the server; past it the socket is dropped."""

SOCKET_MAX_MESSAGE_BYTES = 64 * 1024
"""Largest Socket.IO message a client may send; a larger one closes the connection."""

RATE_LIMIT_STORAGE_TIMEOUT_SECONDS = 1.0
"""How long a rate-limit check waits for Redis before counting in memory instead."""

DASHBOARD_WINDOW_HOURS = 24
"""Hours of history the admin dashboard shows when the request names none."""

DASHBOARD_MAX_WINDOW_HOURS = 168
"""Longest window, in hours, the admin dashboard's statistics may cover (a week)."""

DASHBOARD_TOP_ERRORS = 10
"""How many of the most common errors of failed deliveries the admin dashboard lists."""

DASHBOARD_FAILED_MAX = 100
"""Most failed deliveries the admin dashboard lists, or retries by id, at once."""

ADMIN_SESSION_SECONDS = 12 * 3600
"""How long an admin dashboard login lasts before the API key must be given again."""

WORKER_METRICS_ADDRESS = "127.0.0.1:9102"
"""Where `worker.py` serves its Prometheus metrics (host:port; empty turns it off)."""

RETENTION_DAYS = 365
"""Notifications (with their deliveries) older than this are deleted; 0 keeps them for ever."""

WEBHOOK_EVENT_RETENTION_DAYS = 30
"""Webhook events that were sent or failed are deleted this long after they settled."""

RETENTION_INTERVAL_SECONDS = 3600.0
"""How often each worker (or the embedded web process) deletes what is kept no longer."""

RETENTION_BATCH = 1_000
"""Rows one retention statement deletes; each batch is its own short transaction."""

FAILED_JOB_TTL_SECONDS = 30 * 86_400
"""How long RQ keeps a given-up job in its failed registry (the outbox row stays `failed`)."""
