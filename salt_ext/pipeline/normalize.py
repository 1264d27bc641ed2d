"""Stage 1: normalise the question and correct its spelling.

Quoted strings and shell commands are cut out first (kept verbatim, case
included), the rest is lower-cased, contractions expanded and misspelt words
replaced by the nearest word of a vocabulary built from the registry, the
inventory and everyday ops English.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from salt_ext.inventory.model import Server
from salt_ext.pipeline import lexicon
from salt_ext.pipeline.model import Literal, Normalized
from salt_ext.registry import Registry

WORD_RE = re.compile(r"[a-z][a-z']*[a-z]|[a-z]")
TOKEN_RE = re.compile(r"__lit\d+__|[a-z0-9_~/][a-z0-9_.\-/:%=+@~*]*[a-z0-9_/%*]|[a-z0-9_/%*]|[<>]=?|[|&;]")
QUOTED_RE = re.compile(r"(?<![\w])(['\"`])(.+?)\1(?![\w])")
SHELL_META = re.compile(r"[|;&><`$(){}]")

# A word right after one of these is a name (package, user, state ...): never "correct" it.
NAME_SLOTS = frozenset(
    """install uninstall reinstall purge called named name user username account package packages pkg
    service daemon state sls formula group tag host hostname minion remove delete upgrade process
    processes pattern""".split()
)


@dataclass(frozen=True)
class Vocabulary:
    """Words the spelling corrector knows: ``domain`` ones win ties over ``common`` ones."""

    domain: frozenset[str]
    common: frozenset[str]
    target_words: frozenset[str] = field(default_factory=frozenset)  # ids, tags, aliases, group words

    def __contains__(self, word: str) -> bool:
        return word in self.domain or word in self.common


def build_vocabulary(registry: Registry, inventory: Iterable[Server] = ()) -> Vocabulary:
    """The corrector's vocabulary for this registry and fleet."""
    domain: set[str] = set()
    for word in registry.keywords():
        domain.update(WORD_RE.findall(word.lower()))
    targets: set[str] = set()
    for server in inventory:
        targets.add(server.minion_id.lower())
        for tag in server.tags:
            targets.add(tag.lower())
        for svc in server.services:
            domain.add(svc.lower())
        for value in (server.os, server.os_family):
            if value:
                domain.add(value.lower())
    for aliases in lexicon.TAG_ALIASES:
        if aliases & targets:
            targets |= aliases
    domain |= {w for w in targets if WORD_RE.fullmatch(w)}
    domain |= set(lexicon.ACTION_VERBS) | set(lexicon.READ_VERBS) | set(lexicon.KNOWN_SERVICES)
    domain |= set(lexicon.OS_WORDS) | set(lexicon.SERVICE_ALIASES) | set(lexicon.OPS_WORDS) | set(lexicon.GROUP_NOUNS)
    for aliases in lexicon.TAG_ALIASES:
        domain |= {w for w in aliases if WORD_RE.fullmatch(w)}
    common = set(lexicon.KNOWN_WORDS) | set(lexicon.STOPWORDS)
    common |= set(lexicon.IMPERATIVE_PREFIX) | set(lexicon.NUMBER_WORDS) | set(lexicon.SHELL_COMMANDS)
    common |= {w for c in lexicon.CONTRACTIONS.values() for w in c.split()}
    target_words = frozenset(targets | lexicon.GROUP_NOUNS | {"all", "every", "each", "everything", "everywhere", "the", "our", "of", "and", ","})
    return Vocabulary(frozenset(domain), frozenset(common - domain), target_words)


def edit_distance(a: str, b: str, limit: int = 2) -> int:
    """Optimal-string-alignment distance (a transposition counts as one edit).

    Returns ``limit + 1`` as soon as the distance is known to exceed ``limit``.
    """
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _is_transposition(a: str, b: str) -> bool:
    if len(a) != len(b):
        return False
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]


def correct_word(word: str, vocabulary: Vocabulary) -> str | None:
    """The vocabulary word ``word`` is most likely a typo of, or None.

    Conservative on purpose: a wrong "correction" of a package or host name is
    worse than a missed typo. Short words only get letter swaps ("teh"); the
    first letter must match unless the swap is of the first two letters; an
    everyday (non-domain) word is only reached by a swap; an ambiguous best
    match is left alone.
    """
    if word in vocabulary or len(word) < 3 or not word.isalpha():
        return None
    limit = 1 if len(word) < 8 else 2
    best: dict[int, list[tuple[int, str]]] = {}
    for pool_rank, pool in ((0, vocabulary.domain), (1, vocabulary.common)):
        for cand in pool:
            if abs(len(cand) - len(word)) > limit or len(cand) < 3:
                continue
            swap = _is_transposition(word, cand)
            if (len(word) <= 3 or pool_rank == 1) and not swap:
                continue
            if cand[0] != word[0] and not (swap and word[1] == cand[0]):
                continue
            d = edit_distance(word, cand, limit)
            if d <= limit:
                best.setdefault(d, []).append((pool_rank, cand))
    if not best:
        return None
    options = sorted(best[min(best)])
    top = [c for rank, c in options if rank == options[0][0]]
    if len(top) == 1:
        return top[0]
    swaps = [c for c in top if _is_transposition(word, c)]
    return swaps[0] if len(swaps) == 1 else None


def _extract_quoted(text: str) -> tuple[str, list[Literal]]:
    literals: list[Literal] = []

    def repl(m: re.Match[str]) -> str:
        literals.append(Literal(m.group(2), "quoted"))
        return f" __lit{len(literals) - 1}__ "

    return QUOTED_RE.sub(repl, text), literals


CMD_INTRO = re.compile(r"(?i)\b(run|execute|exec|with|using|via)\s+(?!__lit)(\S+)")
FUNCTION_REF = re.compile(r"[a-z_]+\.[a-z_]+")
# Commands obvious enough to be recognised after "with"/"using" ("format it with mkfs.ext4 /dev/sdb").
OBVIOUS_COMMANDS = frozenset("rm dd mkfs shred wipefs fdisk parted chmod chown curl wget bash sh python perl truncate".split())


def _command_start(word: str, after_run: bool) -> bool:
    """Whether ``word`` opens a shell command (``df``, ``mkfs.ext4``, ``:(){``)."""
    low = word.lower()
    if FUNCTION_REF.fullmatch(low) and not low.startswith("mkfs"):
        return False  # cmd.run, salt.execute: a Salt function, not a command
    base = re.split(r"[.]", low, maxsplit=1)[0]
    if base.startswith("mkfs"):
        return True
    if after_run:
        return base in lexicon.SHELL_COMMANDS or SHELL_META.search(word) is not None or word[:1] in ":/.~$"
    return base in OBVIOUS_COMMANDS


def _strip_target_tail(command: str, vocabulary: Vocabulary) -> str:
    """``rm -rf / on all servers`` -> ``rm -rf /``: cut a trailing target phrase."""
    fillers = {"now", "right", "please", "immediately", "asap", "without", "approval", "the", "today", "tonight"}
    words = command.split(" ")
    for i in range(len(words) - 1, 0, -1):
        if words[i].lower() in {"on", "across", "for", "at", "in", "against", "to", "from"}:
            tail = [re.sub(r"[?.!,]+$", "", w.lower()) for w in words[i + 1 :]]
            if tail and all(w in vocabulary.target_words or w in fillers or w == "" for w in tail):
                if any(w in vocabulary.target_words for w in tail):
                    return " ".join(words[:i])
    return command


def _extract_commands(text: str, literals: list[Literal], vocabulary: Vocabulary) -> str:
    """Cut out unquoted shell commands: ``run df -h on web-01``, ``with mkfs.ext4 /dev/sdb``,
    and a question that simply is one (``chmod -R 777 / on app-1``)."""
    m = re.match(r"(?:[^:]*:\s*)?(\S+)\s+(\S+)", text)
    # only commands that are never plain English ("grep the logs", "df on web-01" are questions)
    if m and _command_start(m.group(1), after_run=False) and re.match(r"[-/~$]|\S*=", m.group(2)) and not m.group(1).startswith("__lit"):
        text = text[: m.start(1)] + "run " + text[m.start(1) :]
    pos = 0
    while m := CMD_INTRO.search(text, pos):
        verb, first, start = m.group(1).lower(), m.group(2), m.start(2)
        pos = m.end(1)
        if not _command_start(first, after_run=verb in {"run", "execute", "exec"}):
            continue
        rest = text[start:]
        # The command ends at another literal, a closing question mark or "and then ...".
        rest = re.split(r"\s__lit\d+__|[?!]\s*$|\s+(?:and then|then|and tell me|and show me|and report)\s+", rest, maxsplit=1)[0]
        command = _strip_target_tail(rest.strip(), vocabulary)
        command = re.sub(r"[?!]+$", "", command).strip()
        if not command:
            continue
        literals.append(Literal(command, "command"))
        placeholder = f" __lit{len(literals) - 1}__ "
        text = text[:start] + placeholder + text[start + len(command) :]
        pos = start + len(placeholder)
    return text


def _expand_contractions(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        return lexicon.CONTRACTIONS.get(m.group(0), m.group(0))

    keys = sorted(lexicon.CONTRACTIONS, key=len, reverse=True)
    return re.sub(r"(?<![\w'])(?:" + "|".join(re.escape(k) for k in keys) + r")(?![\w'])", repl, text)


def normalize(question: str, vocabulary: Vocabulary) -> Normalized:
    """Clean ``question`` up for the later stages (see module docstring)."""
    text = question.translate(str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "}))
    text = re.sub(r"\s+", " ", text).strip()
    masked, literals = _extract_quoted(text)
    masked = _extract_commands(masked, literals, vocabulary)
    masked = re.sub(r"\s+", " ", masked).strip().lower()
    masked = _expand_contractions(masked)

    corrections: dict[str, str] = {}
    out: list[str] = []
    prev_word = ""
    for piece in re.split(r"(\s+)", masked):
        fixed = piece
        m = re.fullmatch(r"([^a-z]*)([a-z]+)([^a-z0-9_\-/.]*)", piece)
        if m and prev_word not in NAME_SLOTS:
            word = m.group(2)
            repl = correct_word(word, vocabulary)
            if repl:
                corrections[word] = repl
                fixed = m.group(1) + repl + m.group(3)
        if piece.strip():
            prev_word = re.sub(r"[^a-z]", "", fixed)
        out.append(fixed)
    masked = "".join(out)

    def restore(m: re.Match[str]) -> str:
        lit = literals[int(m.group(1))]
        return f"'{lit.text}'" if lit.kind == "quoted" else lit.text

    restored = re.sub(r"__lit(\d+)__", restore, masked)
    tokens = [t.rstrip(".,:;!?") for t in TOKEN_RE.findall(masked)]
    return Normalized(
        original=question,
        text=restored,
        masked=masked,
        tokens=[t for t in tokens if t],
        corrections=corrections,
        literals=literals,
    )
