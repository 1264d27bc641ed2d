"""Pipeline stages one by one: normalisation, entities, intent, context, targets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from salt_ext.evals.runner import fleet_from_yaml
from salt_ext.inventory.model import Server
from salt_ext.pipeline.context import Turn, merge_followup
from salt_ext.pipeline.entities import extract_entities, imperative_verbs
from salt_ext.pipeline.fleet import FleetIndex
from salt_ext.pipeline.intent import classify_intent, match_action
from salt_ext.pipeline.model import Entities
from salt_ext.pipeline.normalize import build_vocabulary, correct_word, edit_distance, normalize
from salt_ext.pipeline.targets import resolve_targets
from salt_ext.registry import load_registry

DATA = Path(__file__).parent / "data"
REG = load_registry()
FLEET: list[Server] = fleet_from_yaml(yaml.safe_load((DATA / "fleet.yaml").read_text())["fleet"])
INDEX = FleetIndex.build(FLEET)
VOCAB = build_vocabulary(REG, FLEET)


def ents(question: str) -> Entities:
    return extract_entities(normalize(question, VOCAB), INDEX, REG)


def intent_of(question: str) -> str:
    norm = normalize(question, VOCAB)
    return classify_intent(norm, extract_entities(norm, INDEX, REG), REG).intent


# --- normalisation and spelling ----------------------------------------------------------


def test_typos_are_corrected_from_registry_and_common_words() -> None:
    n = normalize("whats teh cpu usgae on web-03", VOCAB)
    assert n.text == "what is the cpu usage on web-03"
    assert n.corrections == {"teh": "the", "usgae": "usage"}


@pytest.mark.parametrize(
    "typo, fixed",
    [("restrat", "restart"), ("memroy", "memory"), ("proccesses", "processes"), ("dsik", "disk"), ("ngnix", "nginx"), ("databse", "database"), ("instal", "install")],
)
def test_single_typos(typo: str, fixed: str) -> None:
    assert correct_word(typo, VOCAB) == fixed


def test_correction_is_conservative() -> None:
    assert correct_word("htop", VOCAB) is None  # a package name, not "top"
    assert correct_word("data", VOCAB) is None  # an everyday word, not "date"
    assert correct_word("xqzv", VOCAB) is None
    # names after install/user/called are never "corrected"
    assert normalize("install htpo on build-01", VOCAB).text == "install htpo on build-01"
    assert normalize("create a user called jnoe", VOCAB).corrections == {}


def test_edit_distance_counts_a_swap_once() -> None:
    assert edit_distance("teh", "the") == 1
    assert edit_distance("usgae", "usage") == 1
    assert edit_distance("abc", "xyzabc", limit=2) == 3


def test_quotes_and_commands_keep_their_case_and_words() -> None:
    n = normalize("Run 'ls -R /Data' on WEB-01", VOCAB)
    assert n.text == "run 'ls -R /Data' on web-01"
    assert [(l.kind, l.text) for l in n.literals] == [("quoted", "ls -R /Data")]
    n = normalize("run rm -rf / on all servers", VOCAB)
    assert [l.text for l in n.literals] == ["rm -rf /"]
    n = normalize("format the data disk on build-01 with mkfs.ext4 /dev/sdb", VOCAB)
    assert [l.text for l in n.literals] == ["mkfs.ext4 /dev/sdb"]
    n = normalize("run a highstate on everything", VOCAB)
    assert n.literals == []  # "a highstate" is not a shell command


def test_contractions_are_expanded() -> None:
    assert normalize("Why can't web-01 reach prod-db-01?", VOCAB).text == "why cannot web-01 reach prod-db-01?"


# --- entities -----------------------------------------------------------------------------


def test_servers_groups_and_all() -> None:
    e = ents("Show me servers with high CPU in the web tier")
    assert e.groups == [["tag:web"]] and e.topics == ["cpu"]
    assert {"level": "high"} in e.thresholds
    assert ents("check memory on the db servers").groups == [["tag:db"]]
    assert ents("load across all production servers").groups == [["tag:prod"]]
    assert ents("apply updates to all prod web servers").groups == [["tag:prod", "tag:web"]]
    assert ents("uptime of the web and db servers").groups == [["tag:web"], ["tag:db"]]
    assert ents("reboot every server").all_servers
    assert ents("run a highstate on everything").all_servers


def test_os_and_exclusions() -> None:
    e = ents("list all servers running windows")
    assert e.os == ["windows"] and e.all_servers
    e = ents("restart nginx on all web servers except web-02")
    assert e.excluded_servers == ["web-02"]
    e = ents("disk space on all servers except the db servers")
    assert e.excluded_groups == [["tag:db"]]


def test_a_tag_word_is_not_a_group_everywhere() -> None:
    # "redis" is a service, not a group; "cache" only as "cache servers"
    e = ents("restart redis on cache-01")
    assert e.groups == [] and e.services == ["redis"] and e.servers == ["cache-01"]


def test_objects() -> None:
    assert ents("kill process 4242 on web-03").pids == [4242]
    assert ents("install htop on build-01").packages == ["htop"]
    assert ents("remove the telnet package from all servers").packages == ["telnet"]
    assert ents("install htop and jq on build-01").packages == ["htop", "jq"]
    assert ents("create a user called deploy on web-01").users == ["deploy"]
    assert ents("deploy the webapp state to the web tier").states == ["webapp"]
    assert ents("open port 443 in the firewall on web-01").ports == [443]
    assert ents("allow 53/udp on web-01").protocol == "udp"
    assert ents("top 10 processes by cpu on cache-01").count == 10
    assert ents("is nginx running on web-02?").services == ["nginx"]
    assert ents("restart foo-worker on web-01").services == ["foo-worker"]
    assert ents("kill all java processes on build-01").processes == ["java"]
    assert ents("show /etc/hosts on web-01").paths == ["/etc/hosts"]
    assert ents("run 'df -h' on stg-app-01").commands == ["df -h"]
    assert ents("call salt.execute on web-01 to run test.ping").functions == ["salt.execute", "test.ping"]


def test_remote_hosts_are_not_targets() -> None:
    e = ents("Why can't web-01 reach prod-db-01?")
    assert e.servers == ["web-01"]
    assert e.hosts == ["10.0.2.21"]  # the inventory knows prod-db-01's address
    e = ents("can web-01 ping 10.0.0.1?")
    assert e.servers == ["web-01"] and e.hosts == ["10.0.0.1"]
    e = ents("ping web-02")  # nothing else named: is web-02 itself alive?
    assert e.servers == ["web-02"] and "alive" in e.topics


def test_unknown_servers() -> None:
    assert ents("why is prod-db-09 slow?").unknown_servers == ["prod-db-09"]
    assert ents("check web-1").unknown_servers == ["web-1"]
    # version strings, file systems, sizes are not servers
    assert ents("is python3 installed on web-01 with ext4 and utf-8").unknown_servers == []


def test_logs_hints() -> None:
    e = ents("show me recent errors in the syslog of web-01")
    assert "logs" in e.topics and e.log_kind == "syslog" and e.log_pattern == "[Ee][Rr][Rr][Oo][Rr]"
    assert ents("grep the auth log on web-01 for failed logins").log_kind == "auth"


def test_imperative_verbs() -> None:
    assert imperative_verbs("restart nginx on web-02") == ["restart"]
    assert imperative_verbs("ok, please restart it") == ["restart"]
    assert imperative_verbs("can you install htop") == ["install"]
    assert imperative_verbs("why did nginx restart?") == []
    assert imperative_verbs("is nginx running on web-02?") == []
    assert imperative_verbs("check nginx and restart it if it is down") == ["restart"]
    assert imperative_verbs("shut down web-01") == ["shutdown"]


# --- intents --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question, intent",
    [
        ("Why is prod-db-01 slow?", "DIAGNOSE"),
        ("can web-01 ping 10.0.0.1?", "DIAGNOSE"),
        ("how much disk space is left on cache-01?", "QUERY_METRICS"),
        ("top 10 processes by cpu on cache-01", "QUERY_METRICS"),
        ("what packages are installed on build-01", "QUERY_INVENTORY"),
        ("what OS is win-app-01 running?", "QUERY_INVENTORY"),
        ("show me recent errors in the syslog of web-01", "QUERY_LOGS"),
        ("give me a report of disk usage for every server", "REPORT"),
        ("restart nginx on web-02", "REMEDIATE"),
        ("install htop on build-01", "CONFIGURE"),
        ("deploy the webapp state to the web tier", "DEPLOY"),
        ("apply pending updates to all prod web servers", "REMEDIATE"),
        ("are there pending upgrades on prod-db-02?", "QUERY_INVENTORY"),
    ],
)
def test_intents(question: str, intent: str) -> None:
    assert intent_of(question) == intent


def test_intent_has_a_confidence() -> None:
    norm = normalize("Why is prod-db-01 slow?", VOCAB)
    result = classify_intent(norm, extract_entities(norm, INDEX, REG), REG)
    assert 0.5 < result.confidence <= 1.0


def test_action_matching_uses_what_the_question_can_fill() -> None:
    assert match_action(ents("restart nginx on web-01"), REG)[0].name == "service.restart"
    assert match_action(ents("restart web-01"), REG)[0].name == "system.reboot"
    assert match_action(ents("stop mysql on prod-db-01"), REG)[0].name == "service.stop"
    assert match_action(ents("kill pid 42 on web-01"), REG)[0].name == "ps.kill_pid"
    assert match_action(ents("remove user bob from web-01"), REG)[0].name == "user.delete"
    assert match_action(ents("remove the telnet package"), REG)[0].name == "pkg.remove"
    assert match_action(ents("do a highstate"), REG)[0].name == "state.highstate"
    assert match_action(ents("show disk usage on web-01"), REG) is None


# --- context ---------------------------------------------------------------------------------


def _turn(question: str, reply: str | None = None) -> Turn:
    return Turn(ents(question), intent_of(question), ents(reply) if reply else None)


def test_followup_takes_object_and_targets_from_previous_turn() -> None:
    prev = _turn("is nginx running on web-02?", "nginx is not running on web-02: service.status returned False.")
    n = normalize("ok, restart it", VOCAB)
    merged = merge_followup(extract_entities(n, INDEX, REG), n.masked, prev)
    assert merged.services == ["nginx"] and merged.servers == ["web-02"]
    assert {"targets", "objects"} <= set(merged.inherited)


def test_followup_keeps_topic_with_new_targets() -> None:
    prev = _turn("check disk space on cache-01", "cache-01: / is 41% used.")
    n = normalize("and on the db servers?", VOCAB)
    merged = merge_followup(extract_entities(n, INDEX, REG), n.masked, prev)
    assert merged.topics == ["disk"] and merged.groups == [["tag:db"]] and merged.servers == []


def test_a_complete_question_is_not_a_followup() -> None:
    prev = _turn("is nginx running on web-02?")
    n = normalize("how much memory is free on build-01?", VOCAB)
    current = extract_entities(n, INDEX, REG)
    assert merge_followup(current, n.masked, prev) is current


def test_pid_from_the_assistant_reply() -> None:
    prev = _turn("what is using the cpu on web-01?", "java (pid 4242) uses 97% of the CPU on web-01.")
    n = normalize("kill it", VOCAB)
    merged = merge_followup(extract_entities(n, INDEX, REG), n.masked, prev)
    assert merged.pids == [4242] and merged.servers == ["web-01"]


# --- targets ---------------------------------------------------------------------------------


def test_unknown_server_is_srv001_with_near_matches() -> None:
    r = resolve_targets(ents("why is prod-db-09 slow?"), INDEX)
    assert r.targets == [] and r.error is not None and r.error.code == "SRV001"
    assert r.error.details["near_matches"]["prod-db-09"][:2] == ["prod-db-01", "prod-db-02"]
    assert "Did you mean" in r.error.message


def test_groups_all_os_and_exclusions_resolve() -> None:
    assert resolve_targets(ents("check memory on the db servers"), INDEX).targets == ["prod-db-01", "prod-db-02"]
    assert resolve_targets(ents("list all servers running windows"), INDEX).targets == ["win-app-01"]
    assert resolve_targets(ents("which servers run postgres?"), INDEX).targets == ["prod-db-02"]
    assert resolve_targets(ents("uptime on all prod web servers except web-02"), INDEX).targets == ["web-01", "web-03"]
    assert len(resolve_targets(ents("show uptime for all servers"), INDEX).targets) == len(FLEET)
    assert resolve_targets(ents("load on every linux server"), INDEX).targets == sorted(s.minion_id for s in FLEET if s.os_family != "Windows")


def test_missing_or_ambiguous_targets_ask_back() -> None:
    r = resolve_targets(ents("how much disk space is left?"), INDEX)
    assert r.targets == [] and r.error is None and "Which servers" in r.clarification
    r = resolve_targets(ents("restart nginx on the web server"), INDEX, write=True)
    assert r.targets == [] and "web-01, web-02, web-03" in r.clarification
    # a read on "the web server" may look at all of them
    assert resolve_targets(ents("uptime of the web server"), INDEX).targets == ["web-01", "web-02", "web-03"]


def test_group_matching_nothing_is_exec005() -> None:
    r = resolve_targets(ents("disk usage on the payments servers"), INDEX)
    assert r.targets == [] and r.error.code == "EXEC005"
    r = resolve_targets(ents("disk usage on the windows db servers"), INDEX)
    assert r.targets == [] and r.error.code == "EXEC005"


def test_more_entity_shapes() -> None:
    assert ents("configure the firewall on cache-01 to allow 8080").ports == [8080]
    assert ents("allow tcp 8443 through the firewall on cache-01").ports == [8443]
    assert ents("check disk on 10.9.9.9").unknown_servers == ["10.9.9.9"]
    assert ents("check disk on 10.0.1.11").servers == ["web-01"]  # an inventory address
    assert "logs" not in ents("which users can log in on web-01").topics
    assert ents("restart the database service on prod-db-01").services == ["@database"]
    assert ents("create an account for carol on web-01").users == ["carol"]
    assert ents("apply the nginx state in test mode on web-01").dry_run
    assert ents("what version of openssl is installed on web-01").packages == ["openssl"]
    assert ents("check memory on db2").unknown_servers == ["db2"]
    assert ents("show traffic on eth0 of web-01").unknown_servers == []
