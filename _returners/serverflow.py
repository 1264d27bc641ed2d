"""
ServerFlow job cache and event store: every job, return and event in PostgreSQL.

A drop-in ``master_job_cache`` honouring Salt's whole job-cache contract (the
``jobs`` runner, salt-api ``/jobs``, SaltGUI work unchanged), built not to slow
the master: ``returner()`` appends one row to a local spool file and returns;
a background thread writes batches with COPY. While PostgreSQL is slow or down
rows wait on disk (``<cachedir>/serverflow/spool``) and are replayed in order,
exactly once, when it is back — also after a master restart or ``kill -9``.

Enable it in the master config:

.. code-block:: yaml

    master_job_cache: serverflow
    event_return: serverflow
    event_return_queue: 100
    event_return_queue_max_seconds: 2
    keep_jobs_seconds: 86400
    serverflow:
      tenant_id: 00000000-0000-4000-8000-000000000001
      database:
        url: postgresql://serverflow_app:...@127.0.0.1:5432/serverflow
      returner:
        batch_size: 2000          # rows per COPY batch
        flush_interval: 0.2       # seconds a row may wait in memory
        spool_dir: null           # default <cachedir>/serverflow/spool
        max_return_bytes: 1048576 # larger returns are stored truncated, with a marker
        archive: false            # clean_old_jobs moves rows to *_archive tables
        event_tags_deny: [salt/auth, minion_ping, "salt/job/*/ret/*"]

It also works as ``ext_job_cache: serverflow`` and ``salt '*' test.ping --return
serverflow`` (the minion then needs the same ``serverflow:`` settings).

The tables (``salt_jobs``, ``salt_job_returns``, ``salt_bus_events`` and their
``*_archive`` twins, tenant-isolated by row-level security) come from migration
``0002_job_cache.sql``: ``salt-run serverflow.migrate`` or the engine applies it.
Every key of ``serverflow:returner:`` is documented in ``salt_ext/config.py``.
"""

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    __opts__: dict[str, Any]  # injected by Salt's loader

try:
    from salt_ext.errors import ServerFlowError
    from salt_ext.jobcache.records import BadRecord
    from salt_ext.jobcache.service import JobCache
    from salt_ext.security.masking import install_log_masking

    HAS_CORE = True
except ImportError as _exc:  # pragma: no cover - depends on the master's Python
    HAS_CORE = False
    _IMPORT_ERROR = str(_exc)

log = logging.getLogger(__name__)

__virtualname__ = "serverflow"


def __virtual__():
    if not HAS_CORE:
        return False, ("serverflow returner: the salt_ext package is not importable "
                       f"({_IMPORT_ERROR})")
    install_log_masking()  # secrets never reach a log line written in this process
    return __virtualname__


def _cache():
    return JobCache.for_opts(__opts__)


def prep_jid(nocache=False, passed_jid=None, recurse_count=0):  # pylint: disable=unused-argument
    """
    Return a new jid, unique across the master's processes (or check the passed one).
    """
    import salt.exceptions

    try:
        return _cache().prep_jid(nocache=nocache, passed_jid=passed_jid)
    except BadRecord as exc:
        raise salt.exceptions.SaltCacheError(f"serverflow job cache: {exc}") from exc


def returner(ret):
    """
    Store one minion return (non-blocking: spooled, written to PostgreSQL in batches).
    """
    _cache().returner(ret)


def save_load(jid, load, minions=None):
    """
    Save the load of a job (and the minions it targets).
    """
    if minions is None and load.get("tgt") not in (None, "") and "return" not in load:
        import salt.utils.minions

        found = salt.utils.minions.CkMinions(__opts__).check_minions(
            load["tgt"], load.get("tgt_type", "glob"))
        minions = found.get("minions") if isinstance(found, dict) else found
    _cache().save_load(jid, load, minions)


def save_minions(jid, minions, syndic_id=None):
    """
    Add minions to a job's list (syndics report theirs this way).
    """
    _cache().save_minions(jid, minions, syndic_id)


def get_load(jid):
    """
    Return the load of a job, with ``Minions`` when known; ``{}`` for an unknown jid.
    Raises SaltCacheError when PostgreSQL cannot answer and the local spool does not hold
    the job (unknown for now is not "no such job": LocalClient keeps waiting for returns).
    """
    import salt.exceptions

    try:
        return _cache().get_load(jid)
    except ServerFlowError as exc:
        raise salt.exceptions.SaltCacheError(f"serverflow job cache: {exc}") from exc


def get_jid(jid):
    """
    Return ``{minion: {"return": ..., "retcode": ..., "success": ...}}`` for a job.
    """
    return _cache().get_jid(jid)


def get_fun(fun):
    """
    Return the latest return of ``fun`` for every minion that ran it.
    """
    return _cache().get_fun(fun)


def get_jids():
    """
    Return every job with its formatted summary (what ``jobs.list_jobs`` shows).
    """
    import salt.utils.jid

    ret = {}
    for jid, load, endtime in _cache().jobs():
        ret[jid] = salt.utils.jid.format_jid_instance(jid, load)
        if endtime and __opts__.get("job_cache_store_endtime"):
            ret[jid]["EndTime"] = endtime
    return ret


def get_jids_filter(count, filter_find_job=True):
    """
    Return the ``count`` most recent jobs, oldest first, without ``saltutil.find_job``.
    """
    import salt.utils.jid

    return [salt.utils.jid.format_jid_instance_ext(jid, load)
            for jid, load, _ in _cache().jobs(count=int(count), skip_find_job=filter_find_job)]


def get_minions():
    """
    Return every minion id that has a stored return.
    """
    return _cache().get_minions()


def update_endtime(jid, time):  # pylint: disable=redefined-outer-name
    """
    Record when a job ended (``job_cache_store_endtime``).
    """
    _cache().update_endtime(jid, time)


def get_endtime(jid):
    """
    Return the recorded end time of a job, False when there is none.
    """
    return _cache().get_endtime(jid)


def clean_old_jobs():
    """
    Expire jobs older than ``keep_jobs_seconds`` in small batches (archiving them if
    ``serverflow:returner:archive``), and replay spools left by stopped processes.
    """
    result = _cache().clean_old_jobs()
    if result.jobs or result.returns or result.events:
        log.info("serverflow job cache: expired %d jobs, %d returns, %d events in %.1fs%s",
                 result.jobs, result.returns, result.events, result.seconds,
                 "" if result.finished else " (more next time)")


def event_return(events):
    """
    Store events from the master bus (``event_return: serverflow``), filtered by
    ``serverflow:returner:event_tags_allow`` / ``event_tags_deny``.
    """
    _cache().event_return(events)
