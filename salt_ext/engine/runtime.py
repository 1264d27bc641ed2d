"""The engine's main loop: one thread reads the bus and runs timers, workers do blocking work."""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from salt_ext.alerts.rules import WATCHED_FUNCTIONS
from salt_ext.alerts.service import AlertService
from salt_ext.chat.service import ChatRequest, ChatService
from salt_ext.chat.signing import Verifier, load_key
from salt_ext.config import load_settings
from salt_ext.security.settings import with_secret_key
from salt_ext.errors import ServerFlowError
from salt_ext.engine.inventory_service import Backend, Backoff, InventoryService, describe
from salt_ext.inventory.tracker import Transition

log = logging.getLogger(__name__)


CHAT_REQUEST = "serverflow/chat/request"


def heartbeat_path(opts: dict[str, Any]) -> str:
    """Where the engine proves it is alive (read by ``serverflow.health``)."""
    return os.path.join(opts["cachedir"], "serverflow", "engine.json")


class Engine:
    """Hosts the ServerFlow services inside the Salt master."""

    def __init__(self, opts: dict[str, Any], gateway: Any = None, database: Any = None) -> None:
        from salt_ext.db import Database

        self.opts = opts
        self.settings = with_secret_key(load_settings(opts), opts)
        if gateway is None:
            from salt_ext.engine.salt_io import SaltGateway

            gateway = SaltGateway(opts)
        self.gateway = gateway
        self.backend = Backend(self.settings, database or Database.from_settings(self.settings))
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="serverflow")
        # Conversations get their own workers: a slow minion in one never delays inventory work.
        self._chat_pool = ThreadPoolExecutor(max_workers=int(self.settings["engine"]["chat_workers"]),
                                             thread_name_prefix="serverflow-chat")
        self._running: dict[str, Future] = {}
        self._outbox: "queue.Queue[Transition]" = queue.Queue()
        self.inventory = InventoryService(self.settings, gateway, self.backend,
                                          self.submit, self._outbox.put)
        self._verifier = Verifier(load_key(opts, create=True))
        # Alerts get one worker of their own: a minion's raise and resolve stay in order.
        self._alert_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="serverflow-alerts")
        self.alerts = AlertService(self.settings, self.backend.db, gateway.fire)
        self._retired: set[str] = set()  # minions whose key was deleted
        self.chat = ChatService(self.settings, self.backend.db, gateway.local_client,
                                master_user=opts.get("user"))
        eng = self.settings["engine"]
        self._db_backoff = Backoff(eng["retry_min"], eng["retry_max"])
        self._db_down_since: float | None = None
        self._db_error = ""
        self._next_heartbeat = 0.0
        self._redis_state = "unknown"

    def submit(self, key: str, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` on a worker unless a job with the same key is still running."""
        running = self._running.get(key)
        if running is not None and not running.done():
            return
        future = self._pool.submit(self._guarded, key, fn, *args)
        self._running[key] = future

    @staticmethod
    def _guarded(key: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # a failing job is logged, never kills the engine
            log.warning("serverflow: %s failed: %s", key, describe(exc))
            return None

    # -- database write-behind with backoff -------------------------------------------
    def _sync_database(self) -> None:
        now = time.monotonic()
        try:
            if not self.backend.ready:
                self.backend.prepare(self.inventory.tracker)
            written = self.inventory.flush()
        except Exception as exc:
            delay = self._db_backoff.failed(now)
            self._db_error = describe(exc)
            if self._db_down_since is None:
                self._db_down_since = now
                log.error("serverflow: %s; retrying with backoff (next in %.0fs)",
                          self._db_error, delay)
            else:
                log.debug("serverflow: database still unavailable, next try in %.0fs", delay)
            return
        if self._db_down_since is not None:
            log.warning("serverflow: database reachable again after %.0fs; wrote %d pending "
                        "inventory changes", now - self._db_down_since, written)
        self._db_down_since = None
        self._db_error = ""
        self._db_backoff.succeeded()

    def _check_redis(self) -> None:
        import redis

        try:
            redis.Redis.from_url(self.settings["redis"]["url"], socket_timeout=1,
                                 socket_connect_timeout=1).ping()
            self._redis_state = "ok"
        except Exception as exc:
            self._redis_state = describe(exc)

    def _heartbeat(self) -> None:
        path = heartbeat_path(self.opts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        body = {
            "pid": os.getpid(),
            "at": time.time(),
            "database": "ok" if self._db_down_since is None and self.backend.ready
            else (self._db_error or "starting"),
            "redis": self._redis_state,
            "minions_known": len(self.inventory.tracker.known()),
        }
        tmp = path + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(body, handle)
        os.replace(tmp, path)

    # -- loop -------------------------------------------------------------------------
    def tick(self) -> None:
        now = time.monotonic()
        while True:
            try:
                transition = self._outbox.get_nowait()
            except queue.Empty:
                break
            self.gateway.fire(transition.tag, transition.data())
            if not self.alerts.enabled:
                continue
            if transition.minion_id in self._retired and transition.new == "offline":
                # its key was deleted: decommissioned, not down; close what was open for it
                self._alert_pool.submit(self._guarded, "alert", self.alerts.on_retired, transition.minion_id)
                continue
            self._retired.discard(transition.minion_id)
            self._alert_pool.submit(self._guarded, "alert", self.alerts.on_presence,
                                    transition.minion_id, transition.old, transition.new)
        self.inventory.tick(now)
        if self._db_backoff.due(now):
            self.submit("database", self._sync_database)
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + float(self.settings["engine"]["heartbeat_interval"])
            self.submit("redis", self._check_redis)
            self._heartbeat()

    def handle(self, event: dict[str, Any]) -> None:
        tag, data = event.get("tag", ""), event.get("data") or {}
        if not isinstance(data, dict):
            return
        if tag == CHAT_REQUEST:
            self._chat(data)
        else:
            if tag == "salt/key" and data.get("act") == "delete" and data.get("id"):
                self._retired.add(str(data["id"]))
            self.inventory.handle(tag, data)
            if (self.alerts.enabled and tag.startswith("salt/job/") and "/ret/" in tag
                    and data.get("fun") in WATCHED_FUNCTIONS and data.get("success", True)):
                self._alert_pool.submit(self._guarded, "alert", self.alerts.on_return,
                                        tag.split("/ret/", 1)[1], data["fun"], data.get("return"))

    def _chat(self, data: dict[str, Any]) -> None:
        try:
            self._verifier.check(data)
            request = ChatRequest.from_event(data)
        except ServerFlowError as exc:
            log.warning("serverflow: chat request %s refused: %s", data.get("request_id"), exc)
            self.gateway.fire("serverflow/chat/invalid/error",
                              {"request_id": data.get("request_id"), "error": exc.as_dict()})
            return

        def emit(kind: str, payload: dict[str, Any]) -> None:
            self.gateway.fire(f"serverflow/chat/{request.conversation_id}/{kind}", payload)

        def turn() -> None:
            try:
                self.chat.handle(request, emit)
            except Exception as exc:  # the asker always gets an answer, never silence
                log.exception("serverflow: chat request %s failed", request.request_id)
                emit("error", {"conversation_id": request.conversation_id,
                               "request_id": request.request_id,
                               "error": {"code": "AI001", "message": f"the question could not be "
                                         f"answered: {describe(exc)}"}})

        self._chat_pool.submit(turn)

    def run(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        log.info("serverflow: engine started (pid %s)", os.getpid())
        try:
            while not stop.is_set():
                event = self.gateway.next_event(0.25)
                if event:
                    self.handle(event)
                self.tick()
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._chat_pool.shutdown(wait=False, cancel_futures=True)
            self._alert_pool.shutdown(wait=False, cancel_futures=True)


def start_engine(opts: dict[str, Any]) -> None:
    """Entry used by ``_engines/serverflow.py``."""
    Engine(opts).run()
