"""Lookups over the inventory: ids, tags (with their aliases), services, OSes.

Built once per question from the ``Server`` list; every lookup is lower-case.
A *selector* names a set of servers: ``tag:prod``, ``svc:nginx``,
``os:windows`` (see ``lexicon.OS_WORDS``) or ``idpart:api`` (servers whose id
has ``api`` as a dash-separated part, for fleets that name roles in ids only).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from salt_ext.inventory.model import Server
from salt_ext.pipeline import lexicon


def singular(word: str) -> str:
    """Crude English singular, enough for tag and topic words (servers -> server)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@dataclass
class FleetIndex:
    servers: dict[str, Server]  # minion id (lower) -> Server
    by_address: dict[str, str] = field(default_factory=dict)  # hostname / ip (lower) -> minion id
    tags: dict[str, set[str]] = field(default_factory=dict)  # tag (lower) -> minion ids
    services: dict[str, set[str]] = field(default_factory=dict)  # service (lower) -> minion ids
    tag_words: dict[str, set[str]] = field(default_factory=dict)  # word or alias -> tags

    @classmethod
    def build(cls, inventory: Iterable[Server]) -> FleetIndex:
        idx = cls(servers={})
        for s in inventory:
            mid = s.minion_id.lower()
            idx.servers[mid] = s
            for addr in [s.hostname, *s.ip_addresses]:
                if addr:
                    idx.by_address[str(addr).lower()] = mid
            for tag in s.tags:
                idx.tags.setdefault(tag.lower(), set()).add(mid)
            for svc in s.services:
                idx.services.setdefault(svc.lower(), set()).add(mid)
        for tag in idx.tags:
            words = {tag, tag + "s", singular(tag)}
            for aliases in lexicon.TAG_ALIASES:
                if tag in aliases or singular(tag) in aliases:
                    words |= aliases
            for w in words:
                idx.tag_words.setdefault(w, set()).add(tag)
        # An exact tag always wins over an alias of another tag ("web" vs "www").
        for tag in idx.tags:
            idx.tag_words[tag] = {tag}
        return idx

    # --- lookups -----------------------------------------------------------------------
    def ids(self) -> list[str]:
        return sorted(s.minion_id for s in self.servers.values())

    def server_for(self, token: str) -> str | None:
        """Minion id named by ``token`` (id, hostname or IP), or None."""
        t = token.lower()
        if t in self.servers:
            return self.servers[t].minion_id
        if t in self.by_address:
            return self.servers[self.by_address[t]].minion_id
        return None

    def tags_for(self, word: str) -> set[str]:
        """Tags ``word`` names: the tag itself, a plural, an alias, or a tag
        abbreviating it ("london" -> ``lon``, "production" -> ``prod``)."""
        w = word.lower()
        found = self.tag_words.get(w) or self.tag_words.get(singular(w))
        if found:
            return found
        if len(w) >= 4 and w.isalpha():
            return {t for t in self.tags if len(t) >= 3 and t.isalpha() and w.startswith(t)}
        return set()

    def single_server_for_tag(self, word: str) -> str | None:
        """The one server a tag word selects ("the replica"), if exactly one."""
        ids = set().union(*(self.select("tag:" + t) for t in self.tags_for(word))) if self.tags_for(word) else set()
        return next(iter(ids)) if len(ids) == 1 else None

    def service_names(self, word: str) -> list[str]:
        """Inventory service names ``word`` may mean (``postgres`` -> ``postgresql``)."""
        w = word.lower()
        candidates = [w, *lexicon.SERVICE_ALIASES.get(w, [])]
        return [c for c in dict.fromkeys(candidates) if c in self.services]

    def os_selector(self, word: str) -> str | None:
        w = word.lower()
        if w in lexicon.OS_WORDS:
            return "os:" + w
        for s in self.servers.values():
            if w and w in {(s.os or "").lower(), (s.os_family or "").lower()}:
                return "os:" + w
        return None

    def idpart_ids(self, word: str) -> set[str]:
        w = singular(word.lower())
        return {mid for mid in self.servers if w in re.split(r"[-_.]", mid) or w + "s" in re.split(r"[-_.]", mid)}

    def select(self, selector: str) -> set[str]:
        """Minion ids (original case) matching one selector."""
        kind, _, value = selector.partition(":")
        if kind == "any":  # any:tag:a|tag:b - a word that is an alias of several tags
            return set().union(*(self.select(s) for s in value.split("|")))
        if kind == "tag":
            mids = self.tags.get(value, set())
        elif kind == "svc":
            mids = set().union(*(self.services.get(n, set()) for n in self.service_names(value) or [value]))
        elif kind == "os":
            mids = {mid for mid, s in self.servers.items() if _os_matches(s, value)}
        elif kind == "idpart":
            mids = self.idpart_ids(value)
        elif kind == "id":
            mids = {value} if value in self.servers else set()
        else:
            mids = set()
        return {self.servers[m].minion_id for m in mids}

    def all_ids(self) -> set[str]:
        return {s.minion_id for s in self.servers.values()}

    def near_matches(self, name: str, n: int = 3) -> list[str]:
        """Inventory ids that look like ``name`` (for SRV001 "did you mean")."""
        scored = []
        for mid, server in self.servers.items():
            ratio = difflib.SequenceMatcher(None, name.lower(), mid).ratio()
            if ratio >= 0.6:
                scored.append((-round(ratio, 3), server.minion_id))
        return [mid for _, mid in sorted(scored)[:n]]

    def looks_like_server(self, token: str) -> bool:
        """Close enough to an inventory id to be a typo of one."""
        return bool(difflib.get_close_matches(token.lower(), list(self.servers), n=1, cutoff=0.8))


def _os_matches(server: Server, word: str) -> bool:
    grain, value = lexicon.OS_WORDS.get(word, ("os", word))
    os_ = (server.os or "").lower()
    fam = (server.os_family or "").lower()
    if grain == "kernel":
        # the kernel grain is often missing from an inventory: not Windows/macOS is Linux enough
        kernel = (server.kernel or "").lower()
        return kernel == value if kernel else bool(fam or os_) and "windows" not in (fam, os_) and fam != "macos"
    if grain == "os_family":
        return value in (fam, os_)
    return os_ == value or fam == value or os_.startswith(value)
