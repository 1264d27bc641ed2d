"""Stage 2: pull out what the question names.

Servers and groups (tags, "all servers", OS and service filters, exclusions),
topics (registry topic keywords), thresholds, objects (services, packages,
processes, pids, ports, remote hosts, users, states, paths, shell commands,
Salt functions named outright), log hints, and the imperative verbs.

Works on ``Normalized.masked`` so words inside quotes and commands never count.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from salt_ext.pipeline import lexicon
from salt_ext.pipeline.fleet import FleetIndex, singular
from salt_ext.pipeline.model import Entities, Normalized
from salt_ext.registry import Registry

IP_RE = re.compile(r"^(?:\d{1,3}\.){3}\d{1,3}$")
HOSTNAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")
SERVERISH_RE = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)+$|^[a-z]+\d+[a-z]?$")
FUNCTION_RE = re.compile(r"^([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)$")
FILE_EXTENSIONS = frozenset("log conf cfg ini txt json yaml yml xml sh py pl rb service socket timer d local gz tar zip pid sock sql pem crt key".split())
TLDS = frozenset("com net org io dev local internal lan corp cloud co uk de fr eu us app example intra home".split())

# Tokens that look like server names but are not ("ipv4", "utf-8", "x86_64" ...).
NOT_SERVERS = re.compile(
    r"^(?:ipv[46]|utf-?\d+|x86(?:[-_]64)?|amd64|arm64|aarch64|i[3-6]86|md5|sha\d+|ext[234]|xfs|btrfs|http[s/]?\d*|tls\d*|ssl\d*"
    r"|v?\d+(?:\.\d+)*|\d+[a-z]{1,3}|top-?\d+|python\d*|pip\d*|php\d*|log4j|i18n|l10n|2fa|mfa|k8s|s3|ec2|e2e|mp[34]|p\d\d|q[1-4]"
    r"|(?:centos|rhel|ubuntu|debian|win|windows|rocky|alma|fedora|el|sles|amzn)\d+"
    r"|(?:eth|ens|enp|eno|wlan|lo|bond|br|docker|veth|virbr|tun|tap)\d\w*|(?:sd|vd|xvd|hd)[a-z]\d*|nvme\d+n\d+(?:p\d+)?|md\d+|dm-\d+|loop\d+|tty\d+|pts\d+"
    r"|covid-?19|y2k|mp[34]|h2|ci-?cd|pre-?prod|non-?prod|back-?end|front-?end|day-?\d+)$"
)

CLAUSE_SPLIT = re.compile(r"[.;:!?]+\s*|,\s+|\s+(?:and then|then|and|but|so)\s+")
PREPOSITIONS = frozenset({"in", "on", "across", "to", "for", "from", "of", "at", "within", "throughout"})
DETERMINERS = frozenset({"the", "all", "every", "each", "our", "my", "all the", "any", "those", "these"})
HOST_INTRO = re.compile(
    r"\b(?:reach|reaching|ping|pinging|access|accessing|resolve|resolving|dig|nslookup|traceroute|tracert|trace)"
    r"(?: to)?(?: the)?(?: host| server| address| ip)? (\S+)"
    r"|\b(?:connect|connecting|connection|connections|talk|talking|route|routing|get|getting|traffic|latency|path|reachability)"
    r" (?:to|with|towards) (?:the )?(?:host |server |address |ip )?(\S+)"
    r"|\bbetween (\S+) and (\S+)"
)
# "redis-a is unreachable from api-1": the first is the destination, the second the source
UNREACHABLE_FROM = re.compile(r"\b(\S+) (?:is|seems|looks|appears)(?: to be)? (?:unreachable|not reachable|down|unavailable|not responding|timing out) from (\S+)")
CONNECTIVITY_WORDS = re.compile(r"\b(?:latency|connectivity|connection|connect|network|route|routing|ping|traffic|reach|packet)")
DRY_RUN = re.compile(r"\b(?:test mode|dry[- ]?run|test=true|without (?:making|applying) (?:any )?changes|what would change|simulate|simulation|no-?op)\b")
PACKAGE_VERBS = frozenset({"install", "uninstall", "reinstall", "remove", "purge", "upgrade", "update", "add", "drop", "delete"})
SERVICE_VERBS = frozenset({"restart", "start", "stop", "reload", "bounce", "recycle", "kick", "enable", "disable"})
STATE_VERBS = frozenset({"deploy", "apply", "rollout", "push", "release", "ship", "enforce", "configure"})


def _clean(token: str) -> str:
    return token.strip(".,:;!?()[]{}\"'")


def _words(text: str) -> list[str]:
    return [w for w in (_clean(t) for t in text.split()) if w]


def _fold_phrasal(text: str) -> str:
    for phrase, verb in lexicon.PHRASAL_VERBS.items():
        text = re.sub(rf"\b{phrase}\b", verb, text)
    return text


@functools.lru_cache(maxsize=4096)
def _keyword_re(keyword: str) -> re.Pattern[str]:
    # plural-tolerant, whole words: "process" matches "processes"
    esc = re.escape(keyword)
    return re.compile(rf"(?<![\w\-/.]){esc}(?:e?s)?(?![\w\-/])")


def match_topics(text: str, registry: Registry) -> list[str]:
    """Registry topics named in ``text``; longer keywords first so "disk io" is not "disk"."""
    pairs = sorted(((kw, t.name) for t in registry.topics.values() for kw in t.keywords), key=lambda p: -len(p[0]))
    found: list[tuple[int, str]] = []
    work = text
    for kw, topic in pairs:
        for m in _keyword_re(kw).finditer(work):
            found.append((m.start(), topic))
            work = work[: m.start()] + " " * (m.end() - m.start()) + work[m.end() :]
    topics: list[str] = []
    for _, topic in sorted(found):
        if topic not in topics:
            topics.append(topic)
    return topics


def imperative_clauses(masked: str) -> list[tuple[str, list[str]]]:
    """(verb, words of its clause) for each clause that is a command.

    A verb counts only in its base form and only when nothing but politeness
    ("please", "can you", "I need to") comes before it in its clause, so
    "why did nginx restart?" asks a question and orders nothing. A clause
    without a verb of its own ("stop nginx and apache") belongs to the one
    before it.
    """
    out: list[tuple[str, list[str]]] = []
    for clause in CLAUSE_SPLIT.split(_fold_phrasal(masked)):
        words = _words(clause)
        verb = None
        for word in words:
            if word in lexicon.IMPERATIVE_PREFIX and word not in lexicon.ACTION_VERBS:
                continue
            if word in lexicon.ACTION_VERBS:
                verb = word
            break
        if verb is not None:
            out.append((verb, words))
        elif out:
            out[-1][1].extend(words)
    return out


def imperative_verbs(masked: str) -> list[str]:
    """The command verbs of ``masked``, in order (see ``imperative_clauses``)."""
    return list(dict.fromkeys(v for v, _ in imperative_clauses(masked)))


def _find_functions(tokens: list[str], registry: Registry) -> list[str]:
    found: list[str] = []
    for i, tok in enumerate(tokens):
        m = FUNCTION_RE.match(tok)
        if not m or m.group(2) in FILE_EXTENSIONS or m.group(2) in TLDS:
            continue
        prev = tokens[i - 1] if i else ""
        if tok in registry or prev in {"call", "run", "execute", "invoke", "use", "using", "via", "function", "module", "exec"}:
            if tok not in found:
                found.append(tok)
    return found


def _hosts(masked: str, fleet: FleetIndex) -> tuple[list[str], set[str]]:
    """Remote hosts the question wants reached, and the raw tokens used for them."""
    hosts: list[str] = []
    used: set[str] = set()
    matches = [[m.group(1)] for m in UNREACHABLE_FROM.finditer(masked)]
    for m in HOST_INTRO.finditer(masked):
        if m.group(3):  # between A and B: A is the source (only about the network)
            if CONNECTIVITY_WORDS.search(masked):
                matches.append([m.group(4)])
            continue
        matches.append([g for g in m.groups() if g])
    for groups in matches:
        for raw in groups:
            tok = _clean(raw)
            if not tok or tok in lexicon.STOPWORDS or tok.startswith("__lit"):
                continue
            host_part = tok.split(":")[0] if tok.count(":") == 1 else tok
            # "reach the primary": a tag or id part naming exactly one server
            idpart = fleet.idpart_ids(host_part) if host_part.isalpha() and len(host_part) >= 3 else set()
            mid = fleet.server_for(host_part) or fleet.single_server_for_tag(host_part) or (fleet.servers[next(iter(idpart))].minion_id if len(idpart) == 1 else None)
            if mid or IP_RE.match(host_part) or HOSTNAME_RE.match(host_part) or SERVERISH_RE.match(host_part):
                server = fleet.servers.get(mid.lower()) if mid else None
                value = server.ip_addresses[0] if server and server.ip_addresses else (mid or host_part)
                if value not in hosts:
                    hosts.append(value)
                used.add(tok)
                used.add(host_part)
    return hosts, used


def _ports(masked: str) -> tuple[list[int], str | None]:
    ports: list[int] = []
    proto = None
    for m in re.finditer(r"\bports? (\d{1,5}(?:/(?:tcp|udp))?(?:(?:,\s*|\s+)(?:and\s+|or\s+)?\d{1,5}(?:/(?:tcp|udp))?)*)", masked):
        for p in re.findall(r"\d{1,5}", m.group(1)):
            ports.append(int(p))
    for m in re.finditer(r"\b(\d{1,5})/(tcp|udp)\b|\b(tcp|udp)[/ ](?:port )?(\d{1,5})\b", masked):
        ports.append(int(m.group(1) or m.group(4)))
    for m in re.finditer(r"\b(?:allow|open|block|close|expose|unblock|deny)\s+(?:inbound\s+|incoming\s+)?(?:tcp\s+|udp\s+)?(?:port\s+)?(\d{2,5})\b", masked):
        ports.append(int(m.group(1)))
    for m in re.finditer(r"\b(?:[a-z0-9.\-]+):(\d{2,5})\b", masked):
        ports.append(int(m.group(1)))
    if re.search(r"\budp\b", masked):
        proto = "udp"
    elif re.search(r"\btcp\b", masked):
        proto = "tcp"
    return [p for p in dict.fromkeys(ports) if 0 < p < 65536], proto


def _pids(masked: str) -> list[int]:
    pids: list[int] = []
    for m in re.finditer(r"\b(?:pids?|process(?:es)?(?: ids?| numbers?)?|proc)\s*(?:#|=|:|no\.?)?\s*(\d+(?:(?:,\s*|\s+)(?:and\s+|or\s+)?\d+)*)\b", masked):
        pids.extend(int(p) for p in re.findall(r"\d+", m.group(1)))
    for m in re.finditer(r"\b(?:kill|terminate|end)\s+(?:-\d+\s+|-[a-z]+\s+)?(\d+)\b", masked):
        pids.append(int(m.group(1)))
    return list(dict.fromkeys(pids))


def _count(masked: str) -> int | None:
    num = r"(\d+|" + "|".join(lexicon.NUMBER_WORDS) + r")"
    for pat in (
        rf"\btop {num}\b",
        rf"\b{num} (?:most |biggest |largest |heaviest |busiest |top )?(?:processes|procs|tasks|consumers|hogs)\b",
        rf"\b(?:first|last) {num}\b",
    ):
        m = re.search(pat, masked)
        if m:
            v = m.group(1)
            return int(v) if v.isdigit() else lexicon.NUMBER_WORDS[v]
    return None


def _thresholds(masked: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for m in re.finditer(
        r"(?:(>=|<=|>|<)|\b(above|over|more than|greater than|higher than|exceeding|at least|below|under|less than|lower than|at most))\s*(\d+(?:\.\d+)?)\s*(%|percent|gb|mb|tb|g|m)?",
        masked,
    ):
        op_word = m.group(1) or m.group(2)
        op = ">" if op_word in (">", ">=", "above", "over", "more than", "greater than", "higher than", "exceeding", "at least") else "<"
        out.append({"op": op, "value": float(m.group(3)), "unit": (m.group(4) or "").replace("percent", "%")})
    for m in re.finditer(r"\b(high|higher|highest|heavy|low|lower|lowest|spiking|maxed|peak|full|critical)\b", masked):
        out.append({"level": m.group(1)})
    return out


def _after(tokens: list[str], i: int, skip: Iterable[str]) -> tuple[int, str | None]:
    skip = set(skip)
    j = i + 1
    while j < len(tokens) and tokens[j] in skip:
        j += 1
    return (j, tokens[j]) if j < len(tokens) else (j, None)


def _is_name(word: str | None, reserved: set[str]) -> bool:
    """Could ``word`` be a name (package, user, state)? Not a function word or a number."""
    if not word or word.startswith("__lit") or word in reserved:
        return False
    return bool(re.fullmatch(r"[a-z_][a-z0-9_.+\-]*", word)) and not word.isdigit()


@dataclass
class _Scan:
    """What every extractor of one question shares."""

    masked: str
    tokens: list[str]
    fleet: FleetIndex
    registry: Registry
    reserved: set[str]  # words that are never names (function words, ops vocabulary)
    consumed: set[str] = field(default_factory=set)  # tokens already given a role
    excl_index: int = 0  # tokens from here on follow "except"

    def prev(self, i: int) -> str:
        return self.tokens[i - 1] if i > 0 else ""

    def next(self, i: int) -> str:
        return self.tokens[i + 1] if i + 1 < len(self.tokens) else ""

    def excluded(self, i: int) -> bool:
        return i >= self.excl_index

    def free_name(self, word: str | None, reserved: set[str] | None = None) -> bool:
        """A name-like word no other role took, not a server."""
        return _is_name(word, self.reserved if reserved is None else reserved) and word not in self.consumed and not self.fleet.server_for(word or "")


def _prepare(masked: str, fleet: FleetIndex) -> str:
    """Rewrite a few multi-word expressions into single tokens before scanning."""
    masked = re.sub(r"\bload balancers?\b", "loadbalancer", masked)
    masked = re.sub(r"\bdomain controllers?\b", "domain-controller", masked)
    # "who can log in" is about accounts, "the event log on win-01" about logs
    masked = re.sub(r"\b(can|cannot|to|could|not|who|users?) log (?:in|on)(?:to)?\b", r"\1 login", masked)
    masked = re.sub(r"\blog into\b", "login", masked)
    masked = re.sub(r"\b(\w+)-(?:based|like|family)\b", r"\1", masked)  # "debian-based servers"
    masked = re.sub(r"\b(?:ms )?sql server\b(?!s)", "mssql", masked)  # the product, not a group
    # "make sure htop is installed" asks for the change that makes it so
    masked = re.sub(r"\b(?:make sure|ensure|check that|verify that) (?:the )?(\S+) (?:package )?is (?:installed|present)\b", r"install \1", masked)
    masked = re.sub(r"\b(?:make sure|ensure) (?:the )?(\S+) (?:service )?is (?:running|started|up)\b", r"start \1", masked)
    masked = re.sub(r"\b(?:make sure|ensure) (?:the )?(\S+) (?:service )?is (?:stopped|down|not running)\b", r"stop \1", masked)
    masked = re.sub(r"\b(?:make sure|ensure) (?:the )?(\S+) (?:package )?is (?:removed|absent|gone|not installed|uninstalled)\b", r"remove \1", masked)
    masked = re.sub(r"\b(?:make sure|ensure) (?:the )?(\S+) (?:service )?is enabled\b", r"enable \1", masked)
    masked = re.sub(r"\bbring (?:the )?(\S+) (?:back )?(?:up|online)\b", r"start \1", masked)
    masked = re.sub(r"\b(?:bring|take) (?:the )?(\S+) (?:down|offline)\b", r"stop \1", masked)
    # init-system spellings of a service action: "systemctl restart nginx", "service nginx restart"
    masked = re.sub(r"^(?:sudo )?systemctl (start|stop|restart|reload|enable|disable) ", r"\1 ", masked)
    masked = re.sub(r"^(?:sudo )?service (\S+) (start|stop|restart|reload)\b", r"\2 \1", masked)
    masked = re.sub(r"^(?:sudo )?systemctl (?:status|is-active) (\S+)", r"is \1 running", masked)
    return _expand_ranges(masked, fleet)


def extract_entities(norm: Normalized, fleet: FleetIndex, registry: Registry) -> Entities:
    """Everything the question names (see module docstring)."""
    masked = _prepare(norm.masked, fleet)
    tokens = [t for t in (_clean(t) for t in masked.split()) if t]
    topic_words = {w for t in registry.topics.values() for kw in t.keywords for w in kw.split()}
    reserved = set(lexicon.STOPWORDS) | set(lexicon.GROUP_NOUNS) | set(lexicon.KNOWN_WORDS) | set(lexicon.OPS_WORDS) | topic_words
    reserved |= set(lexicon.ACTION_VERBS) | set(lexicon.READ_VERBS)
    excl = re.search(rf"\b{lexicon.EXCLUDE_WORDS}\b", masked)
    scan = _Scan(masked, tokens, fleet, registry, reserved, excl_index=len(_words(masked[: excl.start()])) if excl else len(tokens))

    e = Entities()
    e.functions = _find_functions(tokens, registry)
    scan.consumed |= set(e.functions)
    _literals(scan, norm, e)
    _remote_hosts(scan, e)  # before servers: "reach prod-db-01" names a destination
    _named_servers(scan, e)
    e.pids = _pids(masked)
    e.ports, e.protocol = _ports(masked)
    if e.hosts and not e.ports:  # "can api-3 talk to redis-a on 6379?"
        e.ports = [int(p) for p in re.findall(r"\b(?:on|at|via|using) (?:tcp |udp )?(?:port )?(\d{2,5})\b", masked) if 0 < int(p) < 65536]
    e.count = _count(masked)
    e.thresholds = _thresholds(masked)
    _paths(scan, e)
    _users(scan, e)
    _states(scan, e)
    _packages(scan, e)
    _services(scan, e)
    _processes(scan, e)
    _extract_groups(tokens, masked, fleet, e, scan.excl_index, scan.consumed, reserved)
    _unknown_servers(scan, e)
    # "ping web-01" / "is web-01 reachable": with no other server named, the
    # destination is the target and the question is whether it answers.
    if not e.servers and e.hosts and all(fleet.server_for(h) for h in e.hosts) and not e.has_target_spec():
        e.servers = [fleet.server_for(h) for h in e.hosts]  # type: ignore[misc]
        e.hosts = []
        e.topics.append("alive")
    _topics(scan, e)
    _logs(scan, e)
    for verb, words in imperative_clauses(masked):
        e.action_words[verb] = e.action_words.get(verb, []) + words
        if verb not in e.actions:
            e.actions.append(verb)
    e.dry_run = bool(DRY_RUN.search(masked))
    e.pronoun = any(t in {"it", "them", "that", "those", "this", "these", "same"} for t in tokens)
    e.words = [singular(t) for t in tokens if t not in lexicon.STOPWORDS and not t.startswith("__lit")]
    return e


def _literals(scan: _Scan, norm: Normalized, e: Entities) -> None:
    """Quoted strings are commands after "run"/"execute" or a shell-taking function, else a search text."""
    for i, tok in enumerate(scan.tokens):
        lit = norm.literal(tok)
        if lit is None:
            continue
        before = scan.tokens[max(0, i - 3) : i]
        after = scan.tokens[i + 1 : i + 4]
        shell_fn = any((spec := scan.registry.get(b)) is not None and spec.shell_args for b in before)
        runs = any(b in {"run", "execute", "exec", "command", "shell", "cmd", "script"} for b in before)
        if lit.kind == "command" or shell_fn or runs or "command" in after or "shell" in after:
            e.commands.append(lit.text)
        elif e.log_pattern is None:
            e.log_pattern = lit.text


def _remote_hosts(scan: _Scan, e: Entities) -> None:
    e.hosts, used = _hosts(scan.masked, scan.fleet)
    scan.consumed |= used
    server_slot = {"on", "at", "for", "from", "server", "host", "node", "minion", "machine", "box", "instance"}
    for i, tok in enumerate(scan.tokens):
        if IP_RE.match(tok) and tok not in scan.consumed and not scan.fleet.server_for(tok):
            if scan.prev(i) in server_slot:
                continue  # an address used as a server name: an unknown server, later
            e.hosts.append(tok)
            scan.consumed.add(tok)


def _named_servers(scan: _Scan, e: Entities) -> None:
    """Servers named by id, hostname, address, or a part of exactly one id ("the replica")."""
    fleet = scan.fleet
    for i, tok in enumerate(scan.tokens):
        if tok in scan.consumed:
            continue
        mid = fleet.server_for(tok)
        if mid:
            (e.excluded_servers if scan.excluded(i) else e.servers).append(mid)
            scan.consumed.add(tok)
    for i, tok in enumerate(scan.tokens):
        if tok in scan.consumed or tok in lexicon.KNOWN_SERVICES or not tok.isalpha() or len(tok) < 3:
            continue
        if scan.prev(i) not in {"the", "on", "at", "for", "from", "to"} or scan.next(i) in lexicon.GROUP_NOUNS:
            continue
        if fleet.service_names(tok) or fleet.os_selector(tok):
            continue
        # "the replica": a tag, or a part of an id, that names exactly one server
        mid = fleet.single_server_for_tag(tok)
        if mid is None and not fleet.tags_for(tok) and tok not in scan.reserved:
            ids = fleet.idpart_ids(tok)
            mid = fleet.servers[next(iter(ids))].minion_id if len(ids) == 1 else None
        if mid:
            (e.excluded_servers if scan.excluded(i) else e.servers).append(mid)
            scan.consumed.add(tok)
    e.servers = list(dict.fromkeys(e.servers))


def _paths(scan: _Scan, e: Entities) -> None:
    for tok in scan.tokens:
        if tok.startswith(("/", "~/")) or re.match(r"^[a-z]:\\", tok):
            if tok not in e.paths:
                e.paths.append(tok)
            scan.consumed.add(tok)


def _users(scan: _Scan, e: Entities) -> None:
    """"user called deploy", "user bob", "the deploy user", "an account for carol"."""
    for i, tok in enumerate(scan.tokens):
        if tok not in {"user", "username", "account", "login"}:
            continue
        j, nxt = _after(scan.tokens, i, {"called", "named", "name", "with", "the", "a", "new", "local", "id", "for"})
        # after "called"/"named" any word is a name ("a user called deploy")
        named = j > i + 1 and scan.tokens[j - 1] in {"called", "named", "name"}
        before = scan.tokens[i - 2] if i >= 2 else ""
        if scan.free_name(nxt, (set(lexicon.STOPWORDS) if named else scan.reserved) | {"accounts", "users"}):
            e.users.append(nxt)  # type: ignore[arg-type]
        elif scan.free_name(scan.prev(i)):
            e.users.append(scan.prev(i))
        elif before in {"the", "a", "that", "this"} and scan.free_name(scan.prev(i), set(lexicon.STOPWORDS) | lexicon.GROUP_NOUNS | {"local", "new", "system", "service", "every", "all"}):
            e.users.append(scan.prev(i))  # "the deploy user": any word is a name there
    e.users = list(dict.fromkeys(e.users))
    scan.consumed |= set(e.users)


def _states(scan: _Scan, e: Entities) -> None:
    """"the webapp state", "state webapp", "deploy webapp to ...", "push the nginx config"."""
    tokens, fleet = scan.tokens, scan.fleet
    for i, tok in enumerate(tokens):
        if tok in {"state", "states", "sls", "formula"}:
            _, nxt = _after(tokens, i, {"called", "named", "file", "the", "a"})
            if scan.free_name(scan.prev(i), scan.reserved | {"salt", "high", "a", "the"}):
                e.states.append(scan.prev(i))
            elif scan.free_name(nxt):
                e.states.append(nxt)  # type: ignore[arg-type]
        elif tok in STATE_VERBS:
            j, nxt = _after(tokens, i, {"the", "a", "our", "new", "latest"})
            follow = tokens[j + 1] if j + 1 < len(tokens) else ""
            # a service name is a fine state name after "deploy" or before
            # "config", but "apply nginx" alone is too vague to guess
            service_ok = tok in {"deploy", "rollout", "ship", "release", "configure"} or follow in {"config", "configuration", "state", "states", "sls", "formula", "role"}
            excluded = scan.reserved if service_ok else scan.reserved | set(lexicon.KNOWN_SERVICES)
            group_word = bool(fleet.tags_for(nxt or "")) and follow in lexicon.GROUP_NOUNS
            if scan.free_name(nxt, excluded) and not group_word and follow not in {"package", "packages", "service", "user"}:
                e.states.append(nxt)  # type: ignore[arg-type]
        scan.consumed |= set(e.states)
    e.states = list(dict.fromkeys(e.states))


def _package_name(scan: _Scan, word: str | None, after: str = "") -> bool:
    """Could ``word`` name a package? "uninstall node from app-1": even a
    word like "node" is one right after the verb, when no group noun use follows."""
    if not word or word in scan.consumed or scan.fleet.server_for(word):
        return False
    singular_noun = word in lexicon.SINGULAR_GROUP_NOUNS and after in {"", "from", "on", "to", "in", "across", "and", ","}
    return _is_name(word, scan.reserved) or word in lexicon.KNOWN_SERVICES or singular_noun


def _packages(scan: _Scan, e: Entities) -> None:
    """Objects of install/remove..., "the X package", "package X", "is X installed", "X version"."""
    tokens = scan.tokens
    for i, tok in enumerate(tokens):
        names: list[str] = []
        if tok in PACKAGE_VERBS:
            j, nxt = _after(tokens, i, {"the", "a", "an", "package", "packages", "pkg", "pkgs", "called", "named", "latest", "new"})
            while _package_name(scan, nxt, tokens[j + 1] if j + 1 < len(tokens) else ""):
                if scan.fleet.tags_for(nxt or "") and j + 1 < len(tokens) and tokens[j + 1] in lexicon.GROUP_NOUNS:
                    break  # "upgrade the db servers": a group, not a package
                names.append(nxt)  # type: ignore[arg-type]
                j, nxt = _after(tokens, j, {"and", ",", "&", "package", "packages"})
                if j < len(tokens) and tokens[j - 1] not in {"and", ",", "&", "package", "packages"}:
                    break
        elif tok in {"package", "packages", "pkg"}:
            if _package_name(scan, scan.prev(i)):
                names.append(scan.prev(i))
            else:
                _, nxt = _after(tokens, i, {"called", "named"})
                if scan.free_name(nxt):
                    names.append(nxt)  # type: ignore[arg-type]
        elif tok == "installed" and i >= 1:
            j = i - 2 if tokens[i - 1] in {"is", "are", "was"} and i >= 2 else i - 1
            if _package_name(scan, tokens[j]):
                names.append(tokens[j])
        elif tok in {"version", "versions"}:
            _, nxt = _after(tokens, i, {"of", "the"})
            if _package_name(scan, nxt):
                names.append(nxt)  # type: ignore[arg-type]
            elif scan.prev(i) in scan.fleet.services or _package_name(scan, scan.prev(i)) and scan.prev(i) not in {"same", "latest", "current", "which", "what"}:
                names.append(scan.prev(i))  # "the nginx version"
        for n in names:
            if n not in e.packages and n not in e.users and n not in e.states:
                e.packages.append(n)
    scan.consumed |= set(e.packages)


SERVICE_STATES = frozenset({"running", "up", "down", "active", "alive", "stopped", "dead", "enabled", "failing", "crashing", "listening"})


def _services(scan: _Scan, e: Entities) -> None:
    """Known service names anywhere, "X service", the object of a service verb, "is X running"."""
    tokens, fleet = scan.tokens, scan.fleet
    for i, tok in enumerate(tokens):
        obj = None
        if tok in SERVICE_VERBS:
            _, obj = _after(tokens, i, {"the", "a", "service", "daemon", "unit"})
        elif tok == "is" and i + 2 < len(tokens) and tokens[i + 2] in SERVICE_STATES:
            obj = tokens[i + 1]
        if obj and scan.free_name(obj) and not fleet.tags_for(obj) and obj not in e.services:
            e.services.append(obj)
    for i, tok in enumerate(tokens):
        if tok in scan.consumed and tok not in e.packages:
            continue
        name = None
        if tok in fleet.services or tok in lexicon.KNOWN_SERVICES or tok in lexicon.SERVICE_ALIASES:
            name = tok
        elif tok in {"service", "daemon", "unit"}:
            prev = scan.prev(i)
            if prev in lexicon.SERVICE_CATEGORY_WORDS and not fleet.service_names(prev):
                name = "@" + lexicon.SERVICE_CATEGORY_WORDS[prev]  # "the database service": per server
            elif scan.free_name(prev):
                name = prev
            else:
                _, nxt = _after(tokens, i, {"called", "named"})
                if _is_name(nxt, scan.reserved):
                    name = nxt
        # "the redis servers" is a group, not a service to act on
        group_use = scan.next(i) in lexicon.GROUP_NOUNS and scan.next(i) not in {"service", "services"}
        if name and name not in e.services and not fleet.server_for(name) and not group_use:
            e.services.append(name)
    scan.consumed |= set(e.services)


def _processes(scan: _Scan, e: Entities) -> None:
    """"java processes", "process named java", "pkill java"."""
    tokens = scan.tokens
    for i, tok in enumerate(tokens):
        if tok in {"process", "processes", "procs"}:
            prev = scan.prev(i)
            _, nxt = _after(tokens, i, {"called", "named", "matching", "like"})
            if _is_name(prev, scan.reserved | {"top", "running", "all", "zombie"}):
                e.processes.append(prev)
            elif scan.next(i) in {"called", "named", "matching", "like"} and _is_name(nxt, scan.reserved):
                e.processes.append(nxt)  # type: ignore[arg-type]
        elif tok in {"pkill", "killall"}:
            _, nxt = _after(tokens, i, {"-9", "-15", "the", "all"})
            if _is_name(nxt, scan.reserved):
                e.processes.append(nxt)  # type: ignore[arg-type]
    e.processes = list(dict.fromkeys(p for p in e.processes if p not in scan.consumed or p in e.services))


def _unknown_servers(scan: _Scan, e: Entities) -> None:
    """Server-like names the inventory does not know (for SRV001)."""
    fleet = scan.fleet
    taken = scan.consumed | set(e.services) | set(e.packages) | set(e.users) | set(e.states) | set(e.processes)
    slot = {"on", "at", "from", "for", "server", "host", "node", "minion", "machine", "box", "instance", "is", "of"}
    for i, tok in enumerate(scan.tokens):
        if tok in taken or tok.startswith(("__lit", "/", "~", "-")):
            continue
        found = False
        if IP_RE.match(tok):
            found = True
        elif not (FUNCTION_RE.match(tok) or NOT_SERVERS.match(tok) or fleet.tags_for(tok) or tok in lexicon.TAG_ALIASES_ALL):
            in_slot = scan.prev(i) in slot
            # "web-1" is a server name anywhere; "db2" only where a server is expected
            hyphen_digit = bool(re.search(r"[-_]", tok)) and any(c.isdigit() for c in tok)
            serverish = bool(SERVERISH_RE.match(tok)) and (hyphen_digit or in_slot or fleet.looks_like_server(tok))
            fqdn = bool(HOSTNAME_RE.match(tok)) and in_slot and tok.rsplit(".", 1)[-1] in TLDS
            found = (serverish or fqdn) and tok not in lexicon.KNOWN_SERVICES and tok not in scan.reserved
        if found:
            (e.excluded_servers if scan.excluded(i) else e.unknown_servers).append(tok)
    e.unknown_servers = list(dict.fromkeys(e.unknown_servers))


def _is_log_path(path: str) -> bool:
    return path.startswith("/var/log") or path.endswith(".log")


def _topics(scan: _Scan, e: Entities) -> None:
    """Registry topics named by keyword, then those the objects imply."""
    for t in match_topics(topic_words_only(scan.masked), scan.registry):
        if t not in e.topics:
            e.topics.append(t)
    commands = bool(imperative_verbs(scan.masked))
    log_paths = any(_is_log_path(p) for p in e.paths)
    derived = [
        ("services", bool(e.services) and not e.packages and "logs" not in e.topics),
        ("packages", bool(e.packages)),
        ("processes", bool(e.pids or e.processes)),
        ("users", bool(e.users)),
        ("connectivity", bool(e.hosts)),
        ("states", bool(e.states)),
        ("shell", bool(e.commands)),
        # a port in a command is a firewall change, in a question a listening socket
        ("firewall", bool(e.ports) and "connections" not in e.topics and commands),
        ("connections", bool(e.ports) and "connectivity" not in e.topics and not commands),
        ("logs", log_paths),
        ("files", bool(e.paths) and "logs" not in e.topics and not log_paths),
    ]
    for topic, present in derived:
        if present and topic in scan.registry.topics and topic not in e.topics:
            e.topics.append(topic)
    if not e.topics and e.os:
        e.topics.append("os")
    if "connectivity" in e.topics and not e.hosts and "alive" not in e.topics:
        e.topics.append("alive")  # "is web-01 unreachable?": does it answer at all
    e.topics = _drop_broader(e.topics)


def _logs(scan: _Scan, e: Entities) -> None:
    """Which log (a kind or an explicit path) and what to look for in it."""
    if "logs" not in e.topics and not e.log_pattern:
        return
    text = topic_words_only(scan.masked)
    explicit = [p for p in e.paths if _is_log_path(p)]
    if explicit:
        e.log_kind = explicit[0]
    else:
        kind = next((k for pat, k in lexicon.LOG_KIND_WORDS if re.search(pat, text)), None)
        e.log_kind = kind or next((s for s in e.services if s in lexicon.LOG_PATHS), "syslog")
    if e.log_pattern is None:
        grep = next((g for pat, g in lexicon.LOG_PATTERN_WORDS if re.search(pat, text)), lexicon.DEFAULT_LOG_PATTERN)
        e.log_pattern = lexicon.case_insensitive(grep)


def topic_words_only(masked: str) -> str:
    """``masked`` without literals and paths: "/var/log" is a path, not a question about logs."""
    return " ".join("" if t.startswith(("__lit", "/", "~/")) else t for t in masked.split())


def _expand_ranges(masked: str, fleet: FleetIndex) -> str:
    """``web-01 to web-03`` -> ``web-01 web-02 web-03`` (ids of the inventory in between)."""

    def repl(m: re.Match[str]) -> str:
        a, b = m.group(1), m.group(2)
        ma, mb = re.fullmatch(r"(.*?)(\d+)", a), re.fullmatch(r"(.*?)(\d+)", b)
        if not (ma and mb and ma.group(1) == mb.group(1) and fleet.server_for(a) and fleet.server_for(b)):
            return m.group(0)
        lo, hi = sorted((int(ma.group(2)), int(mb.group(2))))
        inside = []
        for mid in fleet.servers:
            mm = re.fullmatch(re.escape(ma.group(1)) + r"(\d+)", mid)
            if mm and lo <= int(mm.group(1)) <= hi:
                inside.append((int(mm.group(1)), fleet.servers[mid].minion_id.lower()))
        return " ".join(mid for _, mid in sorted(inside)) or m.group(0)

    return re.sub(r"\b([a-z][\w.-]*\d)\s+(?:to|through|thru|until)\s+([a-z][\w.-]*\d)\b", repl, masked)


def _drop_broader(topics: list[str]) -> list[str]:
    """A narrow topic makes its broad neighbour redundant ("network interfaces")."""
    broader = {
        "interfaces": "network",
        "ip": "network",
        "routes": "network",
        "connections": "network",
        "connectivity": "network",
        "dns": "network",
        "firewall": "network",
        "inodes": "disk",
        "disk_io": "disk",
        "updates": "packages",
        "cron": "shell",
        "logs": "files",
    }
    present = set(topics)
    drop = {broad for narrow, broad in broader.items() if narrow in present}
    if present & {"cpu", "memory", "disk", "load", "inodes", "disk_io", "uptime", "processes", "network", "connections"}:
        drop.add("resources")
    return [t for t in topics if t not in drop]


def _extract_groups(
    tokens: list[str],
    masked: str,
    fleet: FleetIndex,
    e: Entities,
    excl_index: int,
    consumed: set[str],
    reserved: set[str],
) -> None:
    """Fill groups, OS/service filters, "all servers" and fleet questions.

    A tag word counts as a group only where it is used as one: before a group
    noun ("db servers", "prod web boxes", "web tier") or after a preposition
    ("in production", "across all staging"); "restart redis" is a service.
    """
    used: set[int] = set()

    def selectors(word: str) -> list[str]:
        tags = fleet.tags_for(word)
        if tags:
            return ["tag:" + t for t in sorted(tags)]
        os_sel = fleet.os_selector(word)
        if os_sel:
            return [os_sel]
        if fleet.service_names(word) and word not in e.packages:
            return ["svc:" + word]
        if fleet.idpart_ids(word) and word not in reserved:
            return ["idpart:" + word]
        return []

    # 1. "<words> <group noun>": walk back from each group noun.
    for i, tok in enumerate(tokens):
        if tok not in lexicon.GROUP_NOUNS or tok in {"systems", "system"} and i > 0 and tokens[i - 1] == "operating":
            continue
        j = i - 1
        chain: list[tuple[int, str]] = []
        while j >= 0 and (tokens[j] in {"and", "or", ",", "&", "+"} or selectors(tokens[j])) and not fleet.server_for(tokens[j]):
            chain.append((j, tokens[j]))
            j -= 1
        chain.reverse()
        while chain and chain[0][1] in {"and", "or", ",", "&", "+"}:
            chain.pop(0)
        singular_with_ids = tok in lexicon.SINGULAR_GROUP_NOUNS and bool(e.servers) and j >= 0 and tokens[j] in {"the", "its", "their"}
        if chain and singular_with_ids:
            # "restart the web server on web-01": the software, not a group
            word = chain[-1][1]
            if word in lexicon.SERVICE_CATEGORY_WORDS and any(t in SERVICE_VERBS or t == "is" for t in tokens):
                cat = "@" + lexicon.SERVICE_CATEGORY_WORDS[word]
                if cat not in e.services and not e.services:
                    e.services.append(cat)
            continue
        if not chain:
            # unknown group word: "the payments servers" names a group the inventory lacks
            if j >= 0 and j not in used and tokens[j] not in reserved and tokens[j].isalpha() and not fleet.server_for(tokens[j]) and tokens[j] not in consumed:
                if tokens[j] in lexicon.TAG_ALIASES_ALL or tokens[j] not in lexicon.KNOWN_SERVICES:
                    e.group_words.append(tokens[j])
            elif j >= 0 and tokens[j] in lexicon.TAG_ALIASES_ALL and not fleet.tags_for(tokens[j]):
                e.group_words.append(tokens[j])
            continue
        _add_chain(chain, selectors, e, excl_index, used)
        if tok in lexicon.SINGULAR_GROUP_NOUNS and j >= 0 and tokens[j] in {"the", "that", "this", "a"}:
            e.singular_group = True

    # 2. "<preposition> [the|all] <tag word>": "in production", "across all staging".
    #    After a group it narrows that group: "web nodes in nyc" = web AND nyc.
    for i, tok in enumerate(tokens):
        if i in used or tok in consumed or not fleet.tags_for(tok) or fleet.server_for(tok):
            continue
        j = i - 1
        while j >= 0 and tokens[j] in {"the", "all", "every", "each", "our", "my"}:
            j -= 1
        if j >= 0 and (tokens[j] in PREPOSITIONS | {"tagged", "tag", "labelled", "labeled", "role"} or j < i - 1 and tokens[j + 1] in {"all", "every", "each"}):
            narrowing = tokens[j] in {"in", "at", "within", "from"} and e.groups and not (i >= excl_index)
            if narrowing:
                used.add(i)
                sel = selectors(tok)
                tag_sel = "any:" + "|".join(sel) if len(sel) > 1 else sel[0]
                for g in e.groups:
                    if tag_sel not in g:
                        g.append(tag_sel)
            else:
                _add_chain([(i, tok)], selectors, e, excl_index, used)

    # 2b. Tag words side by side, no group noun: "the nyc db primary is slow".
    i = 0
    while i < len(tokens):
        run = []
        while i < len(tokens) and i not in used and tokens[i] not in consumed and fleet.tags_for(tokens[i]) and not fleet.server_for(tokens[i]):
            run.append((i, tokens[i]))
            i += 1
        if len(run) >= 2:
            _add_chain(run, selectors, e, excl_index, used)
        i += 1

    # 3. OS words outside chains: "servers running windows", "on ubuntu".
    for i, tok in enumerate(tokens):
        if i in used:
            continue
        word = tok
        if tok == "red" and i + 1 < len(tokens) and tokens[i + 1] == "hat":
            word = "red hat"
        sel = fleet.os_selector(word) if word in lexicon.OS_WORDS else None
        if sel and sel[3:] not in e.os:
            prev = tokens[i - 1] if i else ""
            if prev in {"running", "run", "runs", "with", "on", "using", "are", "is", "have", "has", "all", "any", "of", "in"} or i == 0:
                (e.excluded_groups.append([sel]) if i >= excl_index else e.os.append(sel[3:]))

    # 4. Service filters: "servers running nginx", "hosts with redis".
    for m in re.finditer(r"\b(?:servers?|hosts?|machines?|boxes|nodes?|instances?|ones)\s+(?:that\s+|which\s+|where\s+)?(?:run|runs|running|with|have|has|hosting|hosts)\s+(\S+)", masked):
        word = _clean(m.group(1))
        if fleet.service_names(word) and word not in e.service_filter:
            e.service_filter.append(word)
            if word in e.services:
                e.services.remove(word)

    # 5. "all servers", "everything"; fleet-level questions.
    if any(re.search(p, masked) for p in lexicon.ALL_PATTERNS):
        e.all_servers = True
    if lexicon.FLEET_QUESTION.search(masked):
        e.fleet_question = True


def _add_chain(chain: list[tuple[int, str]], selectors, e: Entities, excl_index: int, used: set[int]) -> None:
    """Turn "prod web" into one group (AND) and "web and db" into two (OR)."""
    groups: list[list[str]] = [[]]
    for idx, word in chain:
        used.add(idx)
        if word in {"and", "or", ",", "&", "+"}:
            if groups[-1]:
                groups.append([])
            continue
        sels = selectors(word)
        if len(sels) > 1:  # a word that is an alias of several tags: any of them
            groups[-1].append("any:" + "|".join(sels))
        else:
            groups[-1].extend(sels)
    excluded = chain[0][0] >= excl_index
    for g in groups:
        if not g:
            continue
        os_only = all(s.startswith("os:") for s in g)
        svc_only = all(s.startswith("svc:") for s in g)
        if excluded:
            e.excluded_groups.append(g)
        elif os_only:
            e.os.extend(s[3:] for s in g if s[3:] not in e.os)
        elif svc_only:
            e.service_filter.extend(s[4:] for s in g if s[4:] not in e.service_filter)
        else:
            e.groups.append(g)
