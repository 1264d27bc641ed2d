"""Reachability (``network.ping``), interfaces and sockets."""

from __future__ import annotations

import re

from salt_ext.responder.evidence import Evidence
from salt_ext.responder.model import Finding
from salt_ext.responder.rules.base import Context, count_text, fmt, join_names
from salt_ext.responder.rules.services import step_arg

# Linux/BSD: "4 packets transmitted, 0 received, +4 errors, 100% packet loss, time 3051ms"
_STATS_RE = re.compile(
    r"(?P<sent>\d+) packets transmitted, (?P<received>\d+) (?:packets )?received"
    r"(?:, \+\d+ (?:errors|duplicates))*, (?P<loss>\d+(?:\.\d+)?)% packet loss"
)
# Windows: "Packets: Sent = 4, Received = 4, Lost = 0 (0% loss),"
_WIN_STATS_RE = re.compile(
    r"Sent = (?P<sent>\d+), Received = (?P<received>\d+), Lost = \d+ \((?P<loss>\d+)% loss\)"
)
_RTT_RE = re.compile(r"= (?P<min>[\d.]+)/(?P<avg>[\d.]+)/(?P<max>[\d.]+)/[\d.]+ ms")
_WIN_RTT_RE = re.compile(r"Average = (?P<avg>\d+)ms")


def ping_rule(ctx: Context, minion_id: str) -> None:
    for obs in ctx.obs.all(minion_id, "ping"):
        host = step_arg(obs, "host") or "the host"
        if isinstance(obs.data, bool):
            ev = obs.ev()
            if obs.data:
                ctx.add(
                    Finding(
                        "info",
                        f"{host} is reachable",
                        "network.ping returned True.",
                        [ev] if ev else [],
                        minion_id=minion_id,
                        topic="network",
                        brief=f"{host} reachable",
                    )
                )
            else:
                _unreachable(ctx, minion_id, host, [ev] if ev else [], "network.ping returned False.")
            continue
        text = obs.data
        stats = _STATS_RE.search(text) or _WIN_STATS_RE.search(text)
        if stats is None:
            first = text.strip().splitlines()[0] if text.strip() else ""
            _unreachable(
                ctx,
                minion_id,
                host,
                [Evidence(minion_id, obs.function, obs.jid, obs.base, first)] if first else [],
                f"ping printed no statistics: {first or '(empty output)'}",
            )
            continue
        evidence = [Evidence(minion_id, obs.function, obs.jid, obs.base, stats.group(0))]
        rtt = _RTT_RE.search(text) or _WIN_RTT_RE.search(text)
        if rtt is not None:
            evidence.append(Evidence(minion_id, obs.function, obs.jid, obs.base, rtt.group(0)))
        loss = float(stats.group("loss"))
        received = f"{stats.group('received')} of {stats.group('sent')} replies"
        if loss >= 100:
            _unreachable(ctx, minion_id, host, evidence, f"{received}, {stats.group('loss')}% packet loss.")
        elif loss > 0:
            ctx.add(
                Finding(
                    "warning",
                    f"{stats.group('loss')}% packet loss to {host}",
                    f"{received}" + (f", average round trip {rtt.group('avg')} ms." if rtt else "."),
                    evidence,
                    minion_id=minion_id,
                    topic="network",
                    brief=f"{stats.group('loss')}% loss to {host}",
                ),
                recommend=f"Look for errors on the interfaces of {minion_id} and on the path to {host} "
                "(link, duplex, congestion, firewall rate limits).",
                follow_up=f"Trace the route from {minion_id} to {host}?",
            )
        else:
            ctx.add(
                Finding(
                    "info",
                    f"{host} is reachable",
                    f"{received}" + (f", average round trip {rtt.group('avg')} ms." if rtt else "."),
                    evidence,
                    minion_id=minion_id,
                    topic="network",
                    brief=f"{host} reachable" + (f" ({rtt.group('avg')} ms)" if rtt else ""),
                )
            )


def _unreachable(ctx: Context, minion_id: str, host: str, evidence: list[Evidence], detail: str) -> None:
    ctx.add(
        Finding(
            "critical",
            f"{host} is unreachable",
            detail,
            evidence,
            minion_id=minion_id,
            topic="network",
            brief=f"{host} unreachable",
        ),
        recommend=f"Check the route and firewall between {minion_id} and {host}, and whether {host} is up.",
        follow_up=f"Trace the route from {minion_id} to {host}?",
    )


def interfaces_rule(ctx: Context, minion_id: str) -> None:
    obs = ctx.obs.last(minion_id, "interfaces")
    if obs is None:
        return
    parts, down = [], []
    for name, info in obs.data.items():
        if not isinstance(info, dict):
            continue
        addresses = [
            str(a["address"]) for a in info.get("inet") or [] if isinstance(a, dict) and a.get("address")
        ]
        up = info.get("up")
        parts.append(f"{name} {'up' if up else 'down'}" + (f" {', '.join(addresses)}" if addresses else ""))
        if up is False and addresses:
            down.append((name, obs.ev(name, "up")))
    for name, ev in down:
        ctx.add(
            Finding(
                "warning",
                f"Interface {name} is down",
                f"{name} has an address configured but is not up.",
                [ev] if ev else [],
                minion_id=minion_id,
                topic="network",
                brief=f"{name} down",
            ),
            recommend=f"Bring {name} up on {minion_id} or remove its stale address "
            "(check cabling/virtual NIC).",
        )
    ctx.add(
        Finding(
            "info",
            "Network interfaces",
            "Interfaces: " + "; ".join(parts) + ".",
            minion_id=minion_id,
            topic="network",
            brief="interfaces " + "; ".join(p for p in parts if " up" in p),
        )
    )


def netstat_rule(ctx: Context, minion_id: str) -> None:
    obs = ctx.obs.last(minion_id, "netstat")
    if obs is None:
        return
    listening = obs.length(name="listening_sockets", params={"field": "state", "equals": "LISTEN"})
    established = obs.length(
        name="established_connections", params={"field": "state", "equals": "ESTABLISHED"}
    )
    ports = sorted(
        {str(s.get("local-address")) for s in obs.data if isinstance(s, dict) and s.get("state") == "LISTEN"}
    )
    ctx.add(
        Finding(
            "info",
            f"{count_text(listening, 'listening socket')}, "
            f"{count_text(established, 'established connection')}",
            (
                f"Listening on: {join_names(ports, ctx.thresholds.listed_items)}."
                if ports
                else "Nothing is listening."
            ),
            [e for e in (listening, established) if e],
            minion_id=minion_id,
            topic="network",
            brief=f"{fmt(listening)} listening, {fmt(established)} established",
        )
    )
