"""Stage 4: context enrichment from the conversation (last 10 messages).

A turn that leaves something out borrows it from the turn before:
"ok, restart it" takes the service and the servers of the previous question,
"and on the db servers?" keeps the previous topic with new servers. What the
assistant answered counts too ("nginx is not running on web-02").
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

from salt_ext.pipeline import lexicon
from salt_ext.pipeline.model import Entities

HISTORY_LIMIT = 10
# "there" as a place, not "is there" / "there are"
THERE = re.compile(r"(?<!\bis )(?<!\bare )(?<!\bwas )(?<!\bwere )\bthere\b(?! (?:is|are|was|were|any)\b)")

TARGET_FIELDS = (
    "servers",
    "groups",
    "group_words",
    "all_servers",
    "excluded_servers",
    "excluded_groups",
    "os",
    "service_filter",
    "fleet_question",
    "singular_group",
)
OBJECT_FIELDS = ("services", "packages", "processes", "pids", "ports", "protocol", "hosts", "users", "states", "paths", "commands")
TOPIC_FIELDS = ("topics", "log_kind", "log_pattern", "count", "thresholds")
# objects imply a topic, as in entity extraction
OBJECT_TOPICS = {"services": "services", "packages": "packages", "pids": "processes", "processes": "processes", "users": "users", "hosts": "connectivity", "states": "states", "commands": "shell"}


@dataclass
class Turn:
    """What an earlier user message asked, and what the assistant said back."""

    entities: Entities
    intent: str | None = None
    reply: Entities | None = None


def recent_history(history: list[dict] | None) -> list[dict]:
    """The last ``HISTORY_LIMIT`` well-formed messages."""
    msgs = [m for m in (history or []) if isinstance(m, dict) and isinstance(m.get("content"), str)]
    return msgs[-HISTORY_LIMIT:]


def is_followup(ents: Entities, masked: str) -> bool:
    """Whether a message leans on the previous turn."""
    if lexicon.FOLLOWUP_START.match(masked) or ents.pronoun:
        return True
    says_what = bool(ents.topics or ents.actions or ents.functions or ents.commands)
    return not says_what or not ents.has_target_spec()


def _copy_fields(dst: Entities, src: Entities, fields: tuple[str, ...]) -> bool:
    changed = False
    for name in fields:
        value = getattr(src, name)
        if value not in (None, False, [], {}):
            setattr(dst, name, copy.deepcopy(value))
            changed = True
    return changed


def merge_followup(current: Entities, masked: str, previous: Turn | None) -> Entities:
    """``current`` completed from ``previous`` where it is a follow-up (pure: returns a copy)."""
    if previous is None or not is_followup(current, masked):
        return current
    merged = copy.deepcopy(current)
    merged.followup = True
    prev = previous.entities
    reply = previous.reply

    if not current.has_target_spec():
        if prev.has_target_spec() and _copy_fields(merged, prev, TARGET_FIELDS):
            merged.inherited.append("targets")
        elif reply is not None and reply.servers:
            merged.servers = list(reply.servers)
            merged.inherited.append("targets")
    elif THERE.search(masked) and prev.servers:
        # "restart it there and on api-2": there = where we just looked
        merged.servers = list(dict.fromkeys(prev.servers + current.servers))
        merged.inherited.append("targets")

    asks_nothing = not (current.topics or current.actions or current.functions or current.commands)
    if asks_nothing:
        if _copy_fields(merged, prev, TOPIC_FIELDS):
            merged.inherited.append("topics")
        if prev.actions or prev.functions:
            merged.actions = list(prev.actions)
            merged.functions = list(prev.functions)
            merged.words = list(dict.fromkeys(merged.words + prev.words))
            merged.inherited.append("actions")

    if (asks_nothing or current.pronoun or current.actions) and not current.has_objects():
        # the most recent mention wins: the assistant's reply, then the question
        for source in (reply, prev):
            if source is not None and source.has_objects() and _copy_fields(merged, source, OBJECT_FIELDS):
                merged.inherited.append("objects")
                break
        else:
            if prev.service_filter:  # "which servers run postgres?" ... "restart it on both"
                merged.services = list(prev.service_filter)
                merged.inherited.append("objects")
        for name, topic in OBJECT_TOPICS.items():
            if getattr(merged, name) and topic not in merged.topics and not (topic == "services" and merged.packages):
                merged.topics.append(topic)
    return merged
