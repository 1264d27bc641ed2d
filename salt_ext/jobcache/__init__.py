"""Salt's job cache and event store in PostgreSQL (the ``serverflow`` returner's core).

- ``service``: the contract's verbs for one process (what the loader module calls);
- ``records``: one COPY row per write, built on the caller's thread;
- ``encoding``: any return into jsonb-safe JSON, truncation, COPY text format;
- ``spool``: append-only files holding rows until PostgreSQL has them;
- ``writer``: memory buffer + flusher thread + spool catch-up and replay;
- ``sink``: COPY into a staging table, idempotent upserts;
- ``queries``: reads (PostgreSQL merged with the unflushed spool);
- ``retention``: batched ``clean_old_jobs`` with optional archiving;
- ``jids``: unique jids and ``nocache`` marks without a database round trip.
"""

# The master settings that turn the job cache and event store on: the default of `make up` and
# of the test stack (salt_ext.devstack), of the serverflow.master formula, and of the benchmark.
MASTER_SETTINGS = {
    "master_job_cache": "serverflow",
    "event_return": "serverflow",
    "event_return_queue": 100,
    "event_return_queue_max_seconds": 2,
}
