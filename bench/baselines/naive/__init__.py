"""The naive baseline: the same send API (POST /notifications) as a competent developer would
first write it, on the product's own tables, so that the work done on speed shows as a ratio.

- Flask + Flask-SQLAlchemy models over the migrated schema; the API key is checked with a
  plain query by its SHA-256;
- per recipient: upsert the user (INSERT ... ON CONFLICT, updating the email and phone a
  recipient object gives), add the notification and one delivery per other channel; then
  ONE COMMIT for the request;
- after the commit, per notification: emit `notification` and `unread_count` (counted with a
  query) through Flask-SocketIO's Redis message queue; per delivery: `queue.enqueue(deliver,
  id)` on RQ's default queue;
- the worker is RQ's default `rq.Worker`, which forks a work horse per job.

Served as wsgi.py serves the product (ASYNC_MODE patching, `socketio.run`):

    DATABASE_URL=... REDIS_URL=... PORT=5002 MAX_CONNECTIONS=16384 python -m bench.baselines.naive
    DATABASE_URL=... REDIS_URL=... python -m bench.baselines.naive worker

The app lives in `app.py`, so that RQ can name its job (`bench.baselines.naive.app.deliver`);
`__main__.py` patches first and imports it after.
"""
