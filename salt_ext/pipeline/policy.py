"""Stage 7: the policy check, run on every plan whoever wrote it.

``check_plan`` takes any PlanResult (from the offline planner or, later, an
LLM) and returns a checked copy: blocked or unknown functions are refused
with EXEC003, dangerous content (spec §6.3 patterns and more, in the request
or in any argument) and attempts to talk the assistant out of its approval
rules with AI004; a refused plan keeps no step. Safety and approval come from
the registry, never from the plan: a step that claims to be "read" is
re-classified. Instructions in the user's text can only make the check
stricter, never looser.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Collection, Iterator
from typing import Any

from salt_ext.errors import ErrorInfo
from salt_ext.pipeline.model import PlanResult, PlanStep
from salt_ext.registry import Registry, load_registry

# (label, pattern): shell content never run, whatever the approval.
DANGEROUS_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (label, re.compile(p, re.IGNORECASE))
    for label, p in [
        # spec §6.3
        ("recursive delete of an absolute path (rm -rf /...)", r"\brm\s+(?:-{1,2}[\w-]+\s+)*-{1,2}(?:[a-z]*r[a-z]*f|[a-z]*f[a-z]*r|recursive)[a-z-]*\s+(?:-{1,2}[\w-]+\s+)*[\"']?(?:/|~|\$home|\*)"),
        ("recursive delete of the root or a system directory", r"\brm\s+(?:-{1,2}[\w-]+\s+)*-{1,2}[\w-]*r[\w-]*\s+(?:-{1,2}[\w-]+\s+)*[\"']?/(?:\*|bin|boot|dev|etc|home|lib\w*|opt|proc|root|sbin|srv|sys|usr|var)?/?[\"']?(?:\s|$|;|&|\|)"),
        ("--no-preserve-root", r"--no-preserve-root"),
        ("write to a raw disk device", r">\s*/dev/(?:sd|hd|vd|xvd|nvme|disk|mmcblk|mapper/)"),
        ("raw disk copy (dd)", r"\bdd\s+(?:\S+\s+)*?(?:if|of)="),
        ("write to a raw disk device (of=/dev/...)", r"\bof=/dev/(?:sd|hd|vd|xvd|nvme|disk|mmcblk|mapper/)"),
        ("filesystem creation (mkfs)", r"\bmkfs(?:\.\w+)?\b|\bmke2fs\b|\bmkswap\s+/dev/"),
        ("partition table or signature wipe", r"\b(?:wipefs|sfdisk|sgdisk\s+--zap|fdisk\s+/dev/|parted\s+\S*\s*/dev/\S+\s+(?:rm|mklabel))|\bshred\s+(?:\S+\s+)*/dev/"),
        ("fork bomb", r":\s*\(\s*\)\s*\{[^}]*:\s*\|\s*:[^}]*\}|(\b\w+)\s*\(\s*\)\s*\{[^}]*\b\1\s*\|\s*\1\b[^}]*&[^}]*\}"),
        # beyond the spec
        ("download piped into a shell", r"\b(?:curl|wget|fetch)\b[^|;&]*\|\s*(?:sudo\s+)?(?:\w+/)*(?:ba|z|k|da|c)?sh\b|\b(?:curl|wget)\b[^|;&]*\|\s*(?:sudo\s+)?(?:python\d?|perl|ruby|node)\b"),
        ("shell fed from a download", r"\b(?:ba|z)?sh\s+(?:-c\s+)?[\"']?\s*<?\s*\$?\(\s*(?:curl|wget)\b|\bsource\s+<\(\s*(?:curl|wget)"),
        ("encoded payload piped into a shell", r"\bbase64\s+(?:-d|--decode)\b[^|]*\|\s*(?:ba|z)?sh\b"),
        ("world-writable permissions on a system path", r"\bchmod\b[^;|&\n]*?(?:\b0?777\b|a\+rwx|ugo\+rwx|o\+w)[^;|&\n]*?\s[\"']?/(?:\s|$|\*|bin\b|boot\b|etc\b|lib|opt\b|root\b|sbin\b|usr\b|var\b)"),
        ("recursive ownership change of the root", r"\bchown\s+(?:-\w*R\w*|--recursive)\s+\S+\s+[\"']?/(?:\s|$|\*)"),
        ("overwrite of an account database", r">\s*/etc/(?:passwd|shadow|group|sudoers)\b"),
        ("kill every process", r"\bkill\s+(?:-\w+\s+)*-1\b|\bkill\s+(?:-\w+\s+)*1\s*$|\bpkill\s+(?:-\w+\s+)*(?:-u\s+root\s+)?\.\b|\bkillall5\b"),
        ("reverse shell", r"/dev/(?:tcp|udp)/|\bnc(?:at)?\s+(?:-\w+\s+)*-e\s|\bsocat\b.*\bexec:"),
        ("move of the root into the void", r"\bmv\s+(?:-\w+\s+)*/(?:\*|\s)\S*"),
        ("flush of all firewall rules", r"\biptables\s+(?:-t\s+\w+\s+)?(?:-F|--flush)\s*$|\bufw\s+disable\b|\bsystemctl\s+(?:stop|disable)\s+firewalld\b"),
        ("removal of every crontab", r"\bcrontab\s+-r\b"),
        ("database drop", r"\bdrop\s+(?:database|schema)\b"),
        ("history tampering", r"\bhistory\s+-c\b|\bunset\s+histfile\b|>\s*/var/log/(?:auth\.log|secure|wtmp|btmp|lastlog)\b"),
        ("piping into a shell", r"\|\s*(?:sudo\s+)?(?:/\w+)*/?(?:ba|z|k|da)?sh\b(?!\S*\.)"),
        ("recursive delete from the root (find / -delete)", r"\bfind\s+/\s.*-(?:delete|exec\s+rm)\b"),
        ("kernel crash trigger", r"/proc/sysrq-trigger"),
        ("data upload to a remote host", r"\bcurl\b[^|;]*(?:-d\s*@|--data(?:-binary|-raw)?\s*@|-T\s|--upload-file|-F\s*\S+=@)|\b(?:scp|rsync)\s+\S*/etc/(?:shadow|passwd)"),
        ("a second root account (uid 0)", r"\buseradd\b[^;|]*-u\s*0\b|\busermod\b[^;|]*-u\s*0\b|\buid\s*(?:=|:)\s*0\b"),
        ("Windows disk format or wipe", r"\bformat(?:\.com)?\s+[a-z]:|\bformat-volume\b|\bclear-disk\b|\bdiskpart\b"),
        ("recursive delete of a Windows drive", r"\b(?:rd|rmdir)\s+/s\s+/q\s+[a-z]:\\(?:windows)?\s*$|\bdel\s+/[fsq](?:\s+/[fsq])*\s+[a-z]:\\|\bremove-item\b.*-recurse.*\b[a-z]:\\(?:windows)?\\?\s*$"),
    ]
]

# Attempts to argue the assistant out of its rules (prompt injection).
INJECTION_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (label, re.compile(p, re.IGNORECASE))
    for label, p in [
        ("instruction override", r"\b(?:ignore|disregard|forget|override)\b\W+(?:\w+\W+){0,3}?(?:previous|prior|above|earlier|your|system|all|the)\W+(?:\w+\W+){0,2}?(?:instructions?|rules|prompts?|guidelines|directions|policy|policies|guardrails|restrictions|constraints)"),
        ("approval bypass", r"\b(?:without|no|skip|skipping|bypass|bypassing|avoid|circumvent|override|disable|disabled|ignore|turn\s+off|switch\s+off|no\s+need\s+for|not\s+need|waive)\b(?:\s+\w+){0,3}?\s+(?:human\s+)?(?:approvals?|confirmations?|sign-?offs?|reviews?|safety(?:\s+checks?)?|policy|policies|guardrails|safeguards|validation|restrictions)\b"),
        ("approval bypass", r"\b(?:approvals?|confirmations?|safety\s+checks?|guardrails|restrictions)\s+(?:are|is)\s+(?:now\s+)?(?:disabled|off|not\s+(?:needed|required)|unnecessary|waived|lifted)\b"),
        ("approval bypass", r"\bwithout\s+(?:asking|checking|waiting|confirming)\b"),
        ("re-classification of a change as safe", r"\b(?:mark|classify|treat|label|flag)\b(?:\W+\w+){0,6}?\W+as\s+(?:a\s+)?(?:read|read-only|readonly|safe|harmless)\b"),
        ("approval bypass", r"\b(?:do\s+not|don't|dont|never)\s+(?:ask|wait|require|need)\s+(?:for\s+)?(?:\w+\s+)?(?:approval|confirmation|permission)"),
        ("claimed approval", r"\b(?:pre-?approved|already\s+approved|auto-?approve\w*|approved\s+by\s+(?:the\s+)?(?:admin\w*|security|cto|ceo|boss|manager|lead|me|us))\b"),
        ("claimed approval", r"\b(?:i|we)\s+(?:hereby\s+|already\s+|have\s+|'ve\s+|do\s+|officially\s+)*(?:approve[sd]?|authori[sz]e[sd]?|sign(?:ed)?\s+off|pre-?approve[sd]?|consent)\b"),
        ("claimed approval", r"\b(?:consider|treat|mark|count)\s+(?:this|it|that|the\s+\w+)\s+(?:as\s+)?(?:approved|authori[sz]ed|signed\s+off)\b"),
        ("claimed approval", r"\b(?:this|it|that|the\s+(?:change|request|action|reboot|restart|job|task))\s+(?:is|was|has\s+been|'s)\s+(?:already\s+)?(?:approved|authori[sz]ed|signed\s+off|cleared|pre-?approved)\b"),
        ("claimed approval", r"\byou\s+(?:have|got|already\s+have|now\s+have)\s+(?:my\s+|our\s+|full\s+|explicit\s+)?(?:approval|permission|authori[sz]ation|go-?ahead|sign-?off|consent|clearance)\b"),
        ("claimed approval", r"\b(?:approval|authori[sz]ation|permission|clearance)\s+(?:is\s+|was\s+|has\s+been\s+)?(?:granted|given|implied|assumed|not\s+(?:needed|required|necessary))\b"),
        ("claimed approval", r"\b(?:approve|confirm)\s+(?:it\s+|this\s+)?(?:yourself|automatically|on\s+my\s+behalf|for\s+me)\b|\bapprove\w*\s+in\s+advance\b"),
        ("role play to gain privileges", r"\b(?:you\s+are\s+now|act\s+as|pretend\s+(?:to\s+be|you\s+are)|switch\s+to|enter|enable)\s+(?:an?\s+|the\s+|in\s+)?(?:admin|administrator|root|developer|god|sudo|unrestricted|jailbreak|dan|maintenance)\b"),
        ("role play to gain privileges", r"\b(?:admin|developer|god|sudo|unrestricted|jailbreak|dan)\s+mode\b"),
        ("claimed authority to skip the rules", r"\b(?:i\s+am|i'm|as)\s+(?:the|an?|your)\s+(?:admin|administrator|root|owner|cto|ceo|ciso|security\s+team|boss)\b(?:\W+\w+){0,8}?\W+(?:just|skip|no\s+need|don't|do\s+not|without|authori[sz]e|override|bypass)"),
        ("pretend the rules are different", r"\b(?:pretend|imagine|assume|suppose)\b(?:\W+\w+){0,6}?\W+(?:policy|rules?|registry|approval|allowed|permitted|safe)\b"),
        ("new instructions", r"\b(?:new|updated|real|actual)\s+(?:system\s+)?(?:instructions|policy|rules)\s*:|\bsystem\s+prompt\b|\bjailbreak\b"),
    ]
]

# Requests that would destroy a server or its data, or expose its secrets,
# whatever function might carry them out (checked on the user's words).
DESTRUCTIVE_REQUESTS: list[tuple[str, re.Pattern[str]]] = [
    (label, re.compile(p, re.IGNORECASE))
    for label, p in [
        ("a request to destroy disks or data", r"\b(?:wipe|format|reformat|erase|destroy|nuke|shred|zero[- ]?out|zero[- ]?fill|brick|trash)\b(?:\W+\w+){0,5}?\W+(?:disks?|drives?|partitions?|volumes?|filesystems?|file\s*systems?|servers?|machines?|boxes|hosts?|everything|all|data|databases?|fleet|cluster|os|root|boot|/dev/\S+|[a-z]+-\d+)\b(?!\s+(?:report|output|summary|usage|table|list|stats|statistics|metrics))"),
        ("a request to drop a database", r"\bdrop\s+(?:the\s+)?(?:\w+\s+)?(?:database|db|schema|tables?)\b"),
        ("a request to delete everything", r"\b(?:delete|remove|erase|rm)\s+(?:all\s+(?:the\s+)?(?:data|files)|everything|every\s+file)\b"),
        ("a request to kill every process", r"\bkill(?:\s+-\w+)*\s+(?:all|every|each)\s+(?:the\s+|of\s+the\s+)?(?:running\s+)?process(?:es)?\b"),
        ("a request to destroy backups or tables", r"\b(?:delete|remove|erase|purge|wipe|destroy)\s+(?:all\s+(?:the\s+|of\s+the\s+)?|the\s+|every\s+)?(?:backups?|snapshots?)\b|\btruncate\s+(?:the\s+|all\s+)?(?:\w+\s+)?(?:tables?|databases?)\b"),
        ("tampering with account or boot files", r"\b(?:overwrite|truncate|empty|blank|corrupt|delete|remove|rm|wipe|clear)\b(?:\W+\S+){0,6}?\W+/etc/(?:passwd|shadow|group|sudoers|fstab)\b|\b(?:delete|remove|wipe|overwrite)\b(?:\W+\S+){0,4}?\W+/boot\b"),
        ("a request to erase logs or history", r"\b(?:clear|delete|remove|wipe|erase|truncate|purge|shred)\s+(?:all\s+)?(?:the\s+)?(?:\w+\s+)?(?:logs|audit\s+trail|bash\s+history|shell\s+history|command\s+history)\b|\bcover\s+(?:my|our|the)\s+tracks\b"),
        ("privilege escalation or persistence", r"\bnopasswd\b|/etc/sudoers|\bauthorized_keys\b|\bbackdoor\b|\brootkit\b|\bkeylogger\b|\breverse\s+shell\b|\bsetuid\b|\bchmod\s+[u+]*s\b|\bchmod\s+[4267]\d{3}\b"),
        ("malware", r"\b(?:crypto\s*-?miner|cryptominer|coin\s*miner|xmrig|monero\s+miner|ransomware|botnet)\b"),
        ("download and execute", r"\b(?:download|fetch|pull|grab|curl|wget)\b(?:\W+\S+){0,8}?\W+(?:and|then|&&|;)\s+(?:run|execute|exec|launch|install|pipe|sh|bash)\b"),
        ("data sent out of the fleet", r"\b(?:send|upload|email|e-mail|mail|post|exfiltrate|transfer|forward|leak)\b(?:\W+\S+){0,10}?\W+to\s+(?:\S+@\S+\.\w+|https?://|ftp://|(?:\d{1,3}\.){3}\d{1,3}|an?\s+(?:external|remote|outside|personal|public))"),
        ("a change to a privileged password", r"\b(?:set|change|reset|update|blank|remove)\b(?:\W+\S+){0,4}?\W+(?:root|admin|administrator|sa)(?:'s)?\s+(?:user\s+)?password\b"),
        ("opening the firewall to everything", r"\b(?:open|allow|expose)\s+(?:up\s+)?(?:all|every|any)\s+(?:the\s+)?(?:ports?|traffic|inbound|incoming|connections)\b|\b0\.0\.0\.0/0\b.*\b(?:allow|accept|open)\b"),
        ("switching off a security control", r"\b(?:disable|stop|kill|turn\s+off|switch\s+off|uninstall|remove|purge|mask)\s+(?:the\s+)?(?:selinux|apparmor|auditd|audit\s+logging|firewall|firewalld|ufw|fail2ban|antivirus|anti-virus|defender|edr|security\s+agent|logging)\b"),
        ("a request for secrets", r"/etc/g?shadow\b|\bid_(?:rsa|dsa|ecdsa|ed25519)\b|/\.ssh/|\bprivate[ _-]?keys?\b|\.aws/credentials|\bpassword\s+hash(?:es)?\b"),
        ("a request for secrets", r"\b(?:dump|show|print|reveal|list|display|give|send|leak|export|read|cat|get)\b(?:\W+\w+){0,4}?\W+(?:(?:all|the|root|admin|db|database|user|users'?)\s+)?(?:passwords?|secrets?|credentials|api[ _-]?keys?|access[ _-]?keys?|tokens?|pillar\s+data)\b"),
    ]
]

# Paths a write function may never touch (file.remove /etc ...).
PROTECTED_PATHS = frozenset(
    "/ /bin /boot /dev /etc /home /lib /lib32 /lib64 /opt /proc /root /run /sbin /srv /sys /usr /var /var/lib /var/log "
    "/usr/bin /usr/sbin /usr/lib /usr/local /etc/ssh /etc/pam.d /etc/sudoers /etc/passwd /etc/shadow /etc/group ~ c: c:/windows "
    "c:/windows/system32 c:/program files c:/users".split(" ")
)


SHELL_META = re.compile(r"[;|&`$<>\n\r]")
SECRET_PATH = re.compile(r"/etc/g?shadow\b|/\.ssh/|\bid_(?:rsa|dsa|ecdsa|ed25519)\b|\.aws/credentials|/etc/salt/pki|\.pem$|\.key$", re.IGNORECASE)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple, set)):
        for v in value:
            yield from _strings(v)


def dangerous_content(text: str) -> list[str]:
    """Labels of the dangerous shell patterns found in ``text``."""
    return [label for label, pat in DANGEROUS_PATTERNS if pat.search(text)]


def injection_attempts(text: str) -> list[str]:
    """Labels of the prompt-injection patterns found in ``text``."""
    return list(dict.fromkeys(label for label, pat in INJECTION_PATTERNS if pat.search(text)))


INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


def scan_request(text: str) -> list[str]:
    """Everything in the user's words that makes a request unsafe."""
    text = text.translate(INVISIBLE)  # "r\u200bm -rf /" is still rm -rf /
    destructive = [label for label, pat in DESTRUCTIVE_REQUESTS if pat.search(text)]
    return list(dict.fromkeys(injection_attempts(text) + dangerous_content(text) + destructive))


def protected_path(path: str) -> bool:
    """Whether deleting/overwriting ``path`` would hit the OS itself."""
    p = path.strip().strip("'\"").replace("\\", "/").lower()
    if ".." in p.split("/") or any(ch in p for ch in "*?[") and p.count("/") <= 2:
        return True
    norm = posixpath.normpath(p) if p.startswith("/") else p.rstrip("/")
    if norm in PROTECTED_PATHS:
        return True
    return norm.startswith("/") and norm.count("/") == 1  # anything right under /


def _refuse(plan: PlanResult, code: str, message: str, **details: Any) -> PlanResult:
    return dataclasses.replace(
        plan,
        steps=[],
        requires_approval=False,
        refused=True,
        error=ErrorInfo(code, message, details),
        clarification=None,
    )


def check_step(step: PlanStep, registry: Registry, known_targets: Collection[str] | None = None) -> tuple[PlanStep, ErrorInfo | None]:
    """A step with safety and approval set from the registry, or why it is refused."""
    spec = registry.get(step.function)
    if spec is None:
        return step, ErrorInfo("EXEC003", f"{step.function or 'An empty function'} is not in the module registry, so it is not allowed.", {"function": step.function})
    if spec.safety == "blocked":
        return step, ErrorInfo("EXEC003", f"{step.function} is blocked: {spec.description}", {"function": step.function})
    problems = registry.validate_args(step.function, step.args)
    if problems:
        return step, ErrorInfo("EXEC003", f"{step.function} cannot run with these arguments: {'; '.join(problems)}.", {"function": step.function, "problems": problems})
    if not step.targets:
        return step, ErrorInfo("EXEC005", f"{step.function} has no target.", {"function": step.function})
    if known_targets is not None:
        unknown = sorted(set(step.targets) - set(known_targets))
        if unknown:
            return step, ErrorInfo("EXEC005", f"{step.function} targets servers outside the inventory: {', '.join(unknown)}.", {"function": step.function, "unknown": unknown})
    for name, value in step.args.items():
        arg = spec.args.get(name)
        if arg is None:
            continue
        for text in _strings(value):
            text = text.translate(INVISIBLE)
            found = dangerous_content(text)
            if found:
                return step, ErrorInfo("AI004", f"{step.function} {name}={text!r} contains a dangerous pattern: {found[0]}.", {"function": step.function, "argument": name, "patterns": found})
            if spec.safety != "read" and not arg.shell and SHELL_META.search(text):
                # a package, service or user name never needs ; | & ` $ < > or a newline
                return step, ErrorInfo("AI004", f"{step.function} {name}={text!r} contains shell syntax in an argument that is not a command.", {"function": step.function, "argument": name})
            if arg.type == "path" and SECRET_PATH.search(text):
                return step, ErrorInfo("AI004", f"{step.function} on {text!r} would expose or alter secrets.", {"function": step.function, "argument": name})
        denied = [v for v in (value if isinstance(value, list) else [value]) if str(v).lower() in {str(d).lower() for d in arg.deny}]
        if denied:
            return step, ErrorInfo("AI004", f"{step.function} with {name}={denied[0]!r} is never allowed: it would take the server down, lock everyone out or switch off a safeguard.", {"function": step.function, "argument": name})
        if arg.type == "path" and spec.safety != "read" and any(protected_path(t) for t in _strings(value)):
            return step, ErrorInfo("AI004", f"{step.function} on {value!r} would damage the operating system.", {"function": step.function, "argument": name})
    checked = dataclasses.replace(step, safety=spec.safety, requires_approval=spec.safety != "read", targets=sorted(step.targets))
    return checked, None


def check_plan(plan: PlanResult, registry: Registry | None = None, *, known_targets: Collection[str] | None = None) -> PlanResult:
    """The policy verdict on ``plan`` (a new PlanResult; the input is not changed).

    ``known_targets`` (the inventory's minion ids), when given, also refuses
    steps aimed at servers outside it (EXEC005).
    """
    registry = registry or load_registry()
    unsafe = scan_request(plan.question)
    if unsafe:
        return _refuse(plan, "AI004", f"Refused: the request contains {unsafe[0]}. This cannot be run, with or without approval.", patterns=unsafe)
    checked: list[PlanStep] = []
    for step in plan.steps:
        step_ok, error = check_step(step, registry, known_targets)
        if error is not None:
            return _refuse(plan, error.code, error.message, **error.details)
        checked.append(step_ok)
    return dataclasses.replace(plan, steps=checked, requires_approval=any(s.requires_approval for s in checked), refused=False)
