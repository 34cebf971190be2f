"""Background work: delivery jobs, the relay that finds deliveries without a job, and the
queue they run on (RQ on Redis, or in-process in the embedded mode)."""
