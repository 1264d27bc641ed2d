from salt_ext.inventory.grains import lookup, routable_ips, server_from_grains

GRAINS = {
    "id": "web-7", "fqdn": "web-7.example.org", "host": "web-7", "os": "Ubuntu",
    "os_family": "Debian", "osrelease": "22.04", "kernel": "Linux", "kernelrelease": "5.15.0",
    "num_cpus": 4, "mem_total": 7961, "ipv4": ["127.0.0.1", "10.1.2.3"],
    "ipv6": ["::1", "fe80::1", "2001:db8::7"], "roles": ["web", "edge"],
    "serverflow": {"tags": ["prod", "web"], "services": ["nginx"]},
    "hwaddr_interfaces": {"eth0": "aa:bb"},
}


def test_full_grains_become_a_record():
    server = server_from_grains("web-7", GRAINS)
    assert server.hostname == "web-7.example.org"
    assert server.os == "Ubuntu" and server.os_family == "Debian" and server.os_release == "22.04"
    assert server.kernel == "Linux 5.15.0"
    assert server.cpu_count == 4
    assert server.memory_total == 7961 * 1024 * 1024
    assert server.ip_addresses == ["10.1.2.3", "2001:db8::7"]
    # grain tags first, then roles not already present
    assert server.tags == ["prod", "web", "edge"]
    assert server.services == ["nginx"]
    assert "hwaddr_interfaces" not in server.grains and server.grains["os"] == "Ubuntu"


def test_missing_or_odd_grains_keep_what_is_known():
    server = server_from_grains("odd-1", {"os": "FreeBSD", "num_cpus": "many", "mem_total": None,
                                         "ipv4": "not-an-ip", "serverflow": "garbage"})
    assert server.minion_id == "odd-1" and server.os == "FreeBSD"
    assert server.cpu_count is None and server.memory_total is None
    assert server.ip_addresses == [] and server.tags == []
    assert server_from_grains("none-1", None).minion_id == "none-1"
    assert server_from_grains("list-1", ["not", "a", "dict"]).os is None


def test_tags_fall_back_to_pillar_and_accept_strings():
    server = server_from_grains("db-1", {"os": "Debian"}, {"serverflow": {"tags": "db, prod"}})
    assert server.tags == ["db", "prod"]
    custom = server_from_grains("db-2", {"team": {"labels": ["a", "a", "b"]}}, tags_key="team:labels")
    assert custom.tags == ["a", "b"]


def test_lookup_and_ips():
    assert lookup({"a": {"b": 1}}, "a:b") == 1
    assert lookup({"a": {"b": 1}}, "a:c") is None
    assert lookup({"a": 1}, "a:b") is None
    assert routable_ips({"ipv4": ["0.0.0.0", "169.254.1.1", "192.0.2.9"]}) == ["192.0.2.9"]
