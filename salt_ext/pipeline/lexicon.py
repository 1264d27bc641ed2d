"""Language knowledge of the offline pipeline: ops English, not Salt.

What a Salt function does, which topics it serves and which verbs ask for it
lives in the module registry; this module only knows words: how people say
"all servers", which verbs are commands, what a tag alias is, where logs are.
"""

from __future__ import annotations

import re

# Contractions are expanded before anything else so "can't" and "what's" are
# plain words for every later stage.
CONTRACTIONS: dict[str, str] = {
    "can't": "cannot",
    "cant": "cannot",
    "won't": "will not",
    "isn't": "is not",
    "isnt": "is not",
    "aren't": "are not",
    "doesn't": "does not",
    "doesnt": "does not",
    "don't": "do not",
    "dont": "do not",
    "didn't": "did not",
    "didnt": "did not",
    "wasn't": "was not",
    "couldn't": "could not",
    "shouldn't": "should not",
    "what's": "what is",
    "whats": "what is",
    "where's": "where is",
    "who's": "who is",
    "how's": "how is",
    "that's": "that is",
    "there's": "there is",
    "it's": "it is",
    "let's": "let us",
    "lets": "let us",
    "i'd": "i would",
    "i'm": "i am",
    "i've": "i have",
    "we're": "we are",
    "they're": "they are",
    "you're": "you are",
}

STOPWORDS = frozenset(
    """a an the this that these those it its is are was were be been being am do does did of to in on at
    for from by with about as into onto over under between across per via and or but if then than so
    me my mine we our us you your i he she they them their there here what which who whom whose when
    where why how can could would should will shall may might must please kindly just also too very
    some any all every each both few more most other such no nor not only own same s t now right up
    out off again further once ok okay hey hi thanks thank tell show give get let see know""".split()
)

# Ops words worth correcting when misspelt ("usgae" -> "usage"); the registry
# adds its topic keywords and verbs, the inventory its names.
OPS_WORDS = frozenset(
    """show list check get find display view count compare monitor verify inspect report summary
    summarize overview audit status server servers host hosts machine machines box boxes node nodes
    minion minions instance instances fleet cluster tier environment everything everywhere running
    installed install uninstall remove delete create add open close allow block enable disable start
    stop restart reload kill reboot update upgrade patch apply deploy high higher highest low lowest
    usage used free left available remaining full percent percentage largest biggest consuming recent
    recently latest errors error warnings warning failed failure failures failing critical crashed
    crashing slow performance problem problems issue issues wrong broken unreachable reachable reach
    connect connection connections latency timeout responding unresponsive healthy health called named
    version versions package packages service services process processes user users account accounts
    port ports firewall rule rules log logs syslog file files directory path disk disks space memory
    cpu load average uptime inode inodes network interface interfaces route routes traffic bandwidth
    state states formula command commands shell script production staging development database
    databases webserver webservers application applications backend frontend worker workers pending
    outdated security kernel release operating system approval instructions previous ignore bypass
    override admin mode without processes average""".split()
)

# Ordinary English the corrector must recognise and leave alone (it only ever
# swaps two letters to reach one of these: "teh" -> "the").
KNOWN_WORDS = frozenset(
    """what which where when why how who whom whose is are was were be been being has have had do does
    did done can could would should will shall may might must need needs want wants like please yes no
    me my we our us you your i he she they them their it its that this those these there here than then
    also too now right away immediately asap quickly soon later today yesterday tonight morning hour
    hours minute minutes second seconds day days week weeks month months year time times ago since
    until while during before after about above below under over between across through into onto
    with without within from for of to in on at by as and or but not nor so if else because though
    although unless whether either neither both each every all any some many much more most less least
    few several enough other others another same different new old current default main primary
    secondary local remote internal external public private data date info information detail details
    result results output input value values number numbers amount total size level levels rate rates
    list lists item items thing things stuff way ways part parts kind type types name names word words
    set sets point points line lines page pages text message messages note notes question answer help
    look looking see seen saw know known tell told give given take taken make made keep kept let put
    going go goes went gone come came coming try tried trying use using used work working works worked
    happen happened happening seem seems seemed think thought feel mean means meant say said ask asked
    call called find found show shown shows showing get got getting start keep still even just only
    really very quite rather pretty fairly almost already always never often sometimes usually maybe
    perhaps probably actually basically currently again once twice first second third last next
    previous following big small large tiny huge long short good bad better worse best worst fine
    okay ok alright sure thanks thank hello hi hey dear team folks guys everyone someone anyone
    nobody nothing something anything everybody one two three four five six seven eight nine ten
    hundred thousand million billion half quarter double single multiple empty busy idle spare
    enough plenty lot lots bit little real true false yes ago morning evening night weekend
    week daily weekly monthly hourly nightly business customer customers client clients team teams
    site sites region regions zone zones area office prod dev test qa live box boxes""".split()
)

# Imperative verbs that ask for a change, with the intent they imply when no
# registry function matches (the matched function's intent wins otherwise).
ACTION_VERBS: dict[str, str] = {
    "restart": "REMEDIATE",
    "start": "REMEDIATE",
    "stop": "REMEDIATE",
    "reload": "REMEDIATE",
    "bounce": "REMEDIATE",
    "recycle": "REMEDIATE",
    "kick": "REMEDIATE",
    "kill": "REMEDIATE",
    "pkill": "REMEDIATE",
    "killall": "REMEDIATE",
    "terminate": "REMEDIATE",
    "end": "REMEDIATE",
    "reboot": "REMEDIATE",
    "shutdown": "REMEDIATE",
    "poweroff": "REMEDIATE",
    "halt": "REMEDIATE",
    "fix": "REMEDIATE",
    "repair": "REMEDIATE",
    "resolve": "REMEDIATE",
    "clear": "REMEDIATE",
    "clean": "REMEDIATE",
    "free": "REMEDIATE",
    "flush": "REMEDIATE",
    "rotate": "REMEDIATE",
    "upgrade": "REMEDIATE",
    "update": "REMEDIATE",
    "patch": "REMEDIATE",
    "delete": "REMEDIATE",
    "erase": "REMEDIATE",
    "rm": "REMEDIATE",
    "wipe": "REMEDIATE",
    "format": "REMEDIATE",
    "run": "REMEDIATE",
    "execute": "REMEDIATE",
    "exec": "REMEDIATE",
    "launch": "REMEDIATE",
    "call": "REMEDIATE",
    "invoke": "REMEDIATE",
    "install": "CONFIGURE",
    "uninstall": "CONFIGURE",
    "remove": "CONFIGURE",
    "purge": "CONFIGURE",
    "drop": "CONFIGURE",
    "create": "CONFIGURE",
    "add": "CONFIGURE",
    "make": "CONFIGURE",
    "provision": "CONFIGURE",
    "deprovision": "CONFIGURE",
    "setup": "CONFIGURE",
    "configure": "CONFIGURE",
    "set": "CONFIGURE",
    "change": "CONFIGURE",
    "modify": "CONFIGURE",
    "edit": "CONFIGURE",
    "replace": "CONFIGURE",
    "open": "CONFIGURE",
    "close": "CONFIGURE",
    "allow": "CONFIGURE",
    "block": "CONFIGURE",
    "deny": "CONFIGURE",
    "expose": "CONFIGURE",
    "unblock": "CONFIGURE",
    "enable": "CONFIGURE",
    "disable": "CONFIGURE",
    "deploy": "DEPLOY",
    "apply": "DEPLOY",
    "rollout": "DEPLOY",
    "push": "DEPLOY",
    "release": "DEPLOY",
    "ship": "DEPLOY",
    "enforce": "DEPLOY",
    "highstate": "DEPLOY",
}

# Two-word verbs folded into one token before verb detection.
PHRASAL_VERBS: dict[str, str] = {
    "shut down": "shutdown",
    "power off": "poweroff",
    "set up": "setup",
    "roll out": "rollout",
    "clean up": "clean",
    "free up": "free",
    "get rid of": "remove",
    "take down": "stop",
    "spin up": "start",
    "bring up": "start",
    "bring down": "stop",
    "turn off": "stop",
    "turn on": "start",
    "power cycle": "reboot",
    "power-cycle": "reboot",
    "kick off": "start",
}

# Words that may stand before an imperative verb ("please restart", "can you
# restart", "I need to restart", "ok, restart it").
IMPERATIVE_PREFIX = frozenset(
    """please pls plz kindly could can would will you u i we need needs want wanna like to go ahead and
    then also now ok okay alright right yes yeah yep sure just quickly immediately hey hi so let us
    should shall must gonna going have has try first next finally again lets""".split()
)

READ_VERBS = frozenset(
    "show list check get display tell give find count see view print fetch look monitor compare verify inspect query describe summarize summarise report".split()
)

# (pattern, intent, weight): cues that a question is of a kind, beyond topics.
INTENT_CUES: list[tuple[str, str, float]] = [
    (r"\bwhy\b", "DIAGNOSE", 3),
    (r"\bwhat(?: is|'s)? wrong\b", "DIAGNOSE", 3),
    (r"\b(?:diagnose|diagnosis|troubleshoot|troubleshooting|investigate|debug|root cause)\b", "DIAGNOSE", 4),
    (r"\b(?:slow|slowness|sluggish|laggy|lagging|unresponsive|hanging|freezing|degraded|overloaded)\b", "DIAGNOSE", 3),
    (r"\b(?:problem|problems|issue|issues|failing|broken|crash|crashing|crashed|down|outage)\b", "DIAGNOSE", 2),
    (r"\b(?:unreachable|cannot|unable|not responding|timing out|timeout|time out)\b", "DIAGNOSE", 2),
    (r"\bcan\b.*\b(?:ping|reach|connect|resolve|talk)\b", "DIAGNOSE", 2),
    (r"\b(?:report|summary|summarize|summarise|overview|audit|breakdown|rundown)\b", "REPORT", 4),
    (r"\b(?:logs?|syslog|journal|dmesg|log files?|log entries|log messages)\b", "QUERY_LOGS", 3),
    (r"\bgrep\b", "QUERY_LOGS", 2),
    (r"\b(?:list|inventory|enumerate|installed|which servers|what servers|how many servers)\b", "QUERY_INVENTORY", 1),
    (r"\bhow many (?:cpus?|cores?|processors?|vcpus?|disks?|nics?|interfaces?)\b|\b(?:cpu|processor) (?:model|type|count)\b|\bhow much (?:ram|memory) does\b", "QUERY_INVENTORY", 3),
    (r"\b(?:what|which) (?:version|os|operating system|kernel|distro|release|packages?|services?|users?)\b", "QUERY_INVENTORY", 2),
    (r"\bpending (?:updates|upgrades|patches)\b", "QUERY_INVENTORY", 2),
    (r"\b(?:usage|utilization|utilisation|how much|consumption|metrics|percent|stats|statistics|left|free)\b", "QUERY_METRICS", 1),
]

# When nothing in the question names a topic, this is what an intent looks at.
DEFAULT_TOPICS: dict[str, list[str]] = {
    "DIAGNOSE": ["performance"],
    "QUERY_METRICS": ["resources"],
    "REPORT": ["resources", "uptime"],
    "QUERY_INVENTORY": ["system"],
    "QUERY_LOGS": ["logs"],
}

# Read steps for an intent may come from neighbouring intents when the
# registry has nothing more specific (a report reads metrics and inventory).
INTENT_FALLBACK: dict[str, list[str]] = {
    "QUERY_METRICS": ["QUERY_METRICS", "QUERY_INVENTORY", "DIAGNOSE", "REPORT"],
    "QUERY_INVENTORY": ["QUERY_INVENTORY", "QUERY_METRICS", "DIAGNOSE", "REPORT"],
    "QUERY_LOGS": ["QUERY_LOGS", "DIAGNOSE"],
    "DIAGNOSE": ["DIAGNOSE", "QUERY_METRICS", "QUERY_INVENTORY"],
    "REPORT": ["REPORT", "QUERY_METRICS", "QUERY_INVENTORY", "DIAGNOSE"],
    "REMEDIATE": ["DIAGNOSE", "QUERY_METRICS", "QUERY_INVENTORY"],
    "CONFIGURE": ["QUERY_INVENTORY", "DIAGNOSE"],
    "DEPLOY": ["QUERY_INVENTORY"],
}

READ_INTENTS = frozenset({"QUERY_METRICS", "QUERY_INVENTORY", "QUERY_LOGS", "DIAGNOSE", "REPORT"})
WRITE_INTENTS = frozenset({"REMEDIATE", "CONFIGURE", "DEPLOY"})

# --- targets -------------------------------------------------------------------------------

GROUP_NOUNS = frozenset(
    """server servers tier tiers box boxes host hosts machine machines node nodes instance instances
    fleet cluster clusters group groups environment environments env envs minion minions vm vms ones
    layer pool pools farm side stack systems system""".split()
)
SINGULAR_GROUP_NOUNS = frozenset("server box host machine node instance minion vm system".split())

# "all servers", "every server", "everything", "the whole fleet" ...
ALL_PATTERNS = [
    r"\b(?:all|every|each)(?: (?:of )?(?:the|our|my))? (?:\w+ ){0,3}?(?:servers?|hosts?|machines?|boxes|box|nodes?|minions?|instances?|systems?|vms?)\b",
    r"\b(?:the )?(?:whole|entire|full) (?:fleet|estate|infrastructure|infra|inventory|environment)\b",
    r"\b(?:the|our|my) (?:fleet|estate|infrastructure|infra)\b",
    r"\b(?:everywhere|fleet-wide|fleetwide|across the (?:board|fleet))\b",
    r"\b(?:on|across|to|for|at|in|of) everything\b|^everything\b|\beverything(?:\s+(?:now|right now|immediately|asap|please|today|tonight))*\s*[?.!]*$",
    r"\ball of (?:them|it)\b|\ball (?:the )?(?:things|stuff|lot)\b",
    r"\bevery one of (?:them|the servers)\b",
]
# Fleet-level questions imply the whole fleet: "which servers run windows?"
FLEET_QUESTION = re.compile(
    r"\b(?:which|what|any|how many|list(?: all| the)?|show(?: me)?(?: all| the)?|find(?: all| the)?|are there(?: any)?)"
    r" (?:\w+ )?(?:servers|hosts|machines|boxes|nodes|minions|instances|systems)\b"
    r"|\b(?:which|what|is there (?:a|an|any)|are there any|any) (?:\w+ )?(?:server|host|machine|box|node|minion|instance)s?\b"
    r"|^(?:servers|hosts|machines|boxes|nodes) (?:with|running|that|where)\b"
)
EXCLUDE_WORDS = r"(?:except(?: for)?|excluding|but not|other than|apart from|besides|minus|not including|without)"

# Equivalent words for common tags: a tag matches any word of its set.
TAG_ALIASES: list[frozenset[str]] = [
    frozenset({"prod", "production", "prd", "live"}),
    frozenset({"staging", "stage", "stg", "preprod", "pre-prod"}),
    frozenset({"dev", "development", "devel"}),
    frozenset({"test", "testing", "qa", "tst"}),
    frozenset({"db", "dbs", "database", "databases", "sql"}),
    frozenset({"web", "webserver", "webservers", "www", "http"}),
    frozenset({"cache", "caches", "caching"}),
    frozenset({"app", "apps", "application", "applications"}),
    frozenset({"api", "apis"}),
    frozenset({"backend", "back-end", "backends"}),
    frozenset({"frontend", "front-end", "frontends"}),
    frozenset({"ci", "cicd", "ci/cd", "build", "builds", "builder", "builders"}),
    frozenset({"lb", "lbs", "loadbalancer", "loadbalancers", "balancer", "balancers"}),
    frozenset({"worker", "workers"}),
    frozenset({"queue", "queues", "mq", "broker", "brokers"}),
    frozenset({"monitoring", "mon", "observability"}),
    frozenset({"k8s", "kubernetes", "kube"}),
    frozenset({"storage", "nas", "nfs"}),
    frozenset({"dc", "domain-controller", "ad"}),
    frozenset({"edge", "proxy", "proxies"}),
    frozenset({"mail", "smtp", "email"}),
    frozenset({"dns", "nameserver", "nameservers"}),
    frozenset({"vpn"}),
    frozenset({"bastion", "jump", "jumphost"}),
]

# OS words -> (grain, value) filters, lower case.
OS_WORDS: dict[str, tuple[str, str]] = {
    "windows": ("os_family", "windows"),
    "win": ("os_family", "windows"),
    "linux": ("kernel", "linux"),
    "ubuntu": ("os", "ubuntu"),
    "debian": ("os", "debian"),
    "rocky": ("os", "rocky"),
    "alma": ("os", "almalinux"),
    "almalinux": ("os", "almalinux"),
    "centos": ("os", "centos"),
    "fedora": ("os", "fedora"),
    "rhel": ("os_family", "redhat"),
    "redhat": ("os_family", "redhat"),
    "red hat": ("os_family", "redhat"),
    "suse": ("os_family", "suse"),
    "sles": ("os_family", "suse"),
    "opensuse": ("os_family", "suse"),
    "amazon": ("os", "amazon"),
    "freebsd": ("os", "freebsd"),
    "macos": ("os_family", "macos"),
}

# --- objects -----------------------------------------------------------------------------

# Service names people mention without saying "service".
KNOWN_SERVICES = frozenset(
    """nginx apache apache2 httpd mysql mysqld mariadb postgresql postgres redis redis-server memcached
    rabbitmq rabbitmq-server haproxy keepalived sshd ssh cron crond docker containerd kubelet ntp ntpd
    chrony chronyd rsyslog syslog-ng firewalld ufw php-fpm tomcat jenkins elasticsearch opensearch
    kibana logstash grafana grafana-server prometheus node_exporter zabbix-agent salt-minion
    salt-master postfix dovecot bind9 named dnsmasq squid varnish mongod mongodb cassandra zookeeper
    kafka consul vault nomad etcd openvpn w3svc iis mssqlserver winrm gunicorn uwsgi supervisor
    supervisord celery puma sidekiq traefik envoy caddy minio smbd samba vsftpd snmpd auditd fail2ban
    telegraf influxdb filebeat fluentd fluent-bit datadog-agent pgbouncer patroni gitlab-runner
    nexus sonarqube unbound spooler""".split()
)
# Other names of a service -> names it may carry in the inventory.
SERVICE_ALIASES: dict[str, list[str]] = {
    "postgres": ["postgresql", "postgres"],
    "pg": ["postgresql", "postgres"],
    "psql": ["postgresql"],
    "apache": ["apache2", "httpd"],
    "mysql": ["mysql", "mysqld", "mariadb"],
    "mariadb": ["mariadb", "mysql"],
    "ssh": ["ssh", "sshd"],
    "sshd": ["sshd", "ssh"],
    "redis": ["redis", "redis-server"],
    "rabbitmq": ["rabbitmq-server", "rabbitmq"],
    "iis": ["w3svc"],
    "mssql": ["mssqlserver"],
    "cron": ["cron", "crond"],
    "ntp": ["ntp", "ntpd", "chronyd", "chrony"],
    "mongo": ["mongod", "mongodb"],
    "elastic": ["elasticsearch"],
    "grafana": ["grafana-server", "grafana"],
    "jenkins": ["jenkins"],
}

# "the database service", "restart the web server on web-01": a kind of
# service, whose name each target's inventory decides.
SERVICE_CATEGORIES: dict[str, list[str]] = {
    "database": ["postgresql", "postgres", "mysql", "mysqld", "mariadb", "mongod", "mongodb", "mssqlserver", "cassandra"],
    "web": ["nginx", "apache2", "httpd", "w3svc", "caddy", "lighttpd"],
    "cache": ["redis", "redis-server", "memcached", "varnish"],
    "dns": ["named", "bind9", "unbound", "dnsmasq", "dns"],
    "mail": ["postfix", "exim4", "exim", "dovecot", "sendmail"],
    "queue": ["rabbitmq-server", "rabbitmq", "kafka", "activemq"],
    "proxy": ["haproxy", "nginx", "envoy", "traefik", "squid"],
    "app": ["gunicorn", "uwsgi", "puma", "unicorn", "tomcat", "php-fpm", "node", "w3svc"],
    "ci": ["jenkins", "gitlab-runner", "buildkite-agent"],
    "monitoring": ["prometheus", "grafana-server", "node_exporter", "zabbix-agent", "telegraf", "datadog-agent"],
    "container": ["docker", "containerd", "kubelet", "podman"],
}
SERVICE_CATEGORY_WORDS: dict[str, str] = {
    "database": "database", "db": "database", "sql": "database",
    "web": "web", "webserver": "web", "http": "web",
    "cache": "cache", "caching": "cache",
    "dns": "dns", "mail": "mail", "smtp": "mail",
    "queue": "queue", "broker": "queue", "mq": "queue",
    "proxy": "proxy", "loadbalancer": "proxy", "lb": "proxy", "balancer": "proxy",
    "app": "app", "application": "app",
    "ci": "ci", "build": "ci", "monitoring": "monitoring", "container": "container",
}

# First words of shell commands: "run df -h" is a command, "run a report" is not.
SHELL_COMMANDS = frozenset(
    """rm dd mkfs df du ls cat tail head grep egrep awk sed ps top htop free uptime uname whoami id w who
    systemctl service journalctl apt apt-get yum dnf zypper rpm dpkg pip pip3 npm curl wget nc ncat
    netcat telnet ssh scp rsync chmod chown chgrp chattr echo printf sh bash zsh python python3 perl ruby
    node kill killall pkill reboot shutdown poweroff halt init iptables firewall-cmd ufw find locate
    mount umount fdisk parted lsblk blkid tar gzip gunzip zip unzip mv cp ln touch mkdir rmdir truncate
    shred wipefs crontab useradd userdel usermod passwd sudo su env export docker kubectl git make
    ip ifconfig netstat ss ping traceroute dig nslookup host lsof strace vmstat iostat sar nproc
    sysctl modprobe insmod rmmod hostnamectl timedatectl date hwclock lscpu lsmem dmesg openssl base64
    xargs tee yes sleep watch nohup powershell cmd salt salt-call""".split()
)

# --- logs ----------------------------------------------------------------------------------

# log kind -> os_family (lower case, "*" for any) -> path
LOG_PATHS: dict[str, dict[str, str]] = {
    "syslog": {"debian": "/var/log/syslog", "*": "/var/log/messages"},
    "auth": {"debian": "/var/log/auth.log", "*": "/var/log/secure"},
    "kernel": {"debian": "/var/log/kern.log", "*": "/var/log/messages"},
    "nginx": {"*": "/var/log/nginx/error.log"},
    "apache": {"debian": "/var/log/apache2/error.log", "*": "/var/log/httpd/error_log"},
    "mysql": {"debian": "/var/log/mysql/error.log", "*": "/var/log/mysqld.log"},
    "redis": {"debian": "/var/log/redis/redis-server.log", "*": "/var/log/redis/redis.log"},
    "cron": {"debian": "/var/log/syslog", "*": "/var/log/cron"},
    "mail": {"debian": "/var/log/mail.log", "*": "/var/log/maillog"},
    "haproxy": {"*": "/var/log/haproxy.log"},
    "jenkins": {"*": "/var/log/jenkins/jenkins.log"},
}
LOG_KIND_WORDS: list[tuple[str, str]] = [
    (r"\b(?:auth(?:\.log)?|secure|authentication|login|logins|ssh|sudo)\b", "auth"),
    (r"\b(?:kernel|kern(?:\.log)?|dmesg|oom)\b", "kernel"),
    (r"\b(?:nginx)\b", "nginx"),
    (r"\b(?:apache2?|httpd)\b", "apache"),
    (r"\b(?:mysql|mysqld|mariadb)\b", "mysql"),
    (r"\b(?:redis)\b", "redis"),
    (r"\b(?:cron)\b", "cron"),
    (r"\b(?:mail|postfix|maillog)\b", "mail"),
    (r"\bhaproxy\b", "haproxy"),
    (r"\bjenkins\b", "jenkins"),
    (r"\b(?:syslog|messages|system log|system logs|journal)\b", "syslog"),
]
# What to look for in a log; patterns are grep BREs (GNU \| alternation),
# case-insensitive by bracket expressions since file.grep's options are positional.
LOG_PATTERN_WORDS: list[tuple[str, str]] = [
    (r"\bout of memory|\boom\b", "out of memory\\|oom-killer"),
    (r"\b(?:segfaults?|segmentation)\b", "segfault"),
    (r"\b(?:denied|permission)\b", "denied"),
    (r"\b(?:timeouts?|timed out)\b", "timed out\\|timeout"),
    (r"\b(?:failed logins?|failed password|login failures?|authentication failures?|brute)\b", "Failed password\\|authentication failure"),
    (r"\b(?:critical|crit|fatal|panic|emerg)\b", "crit\\|fatal\\|panic\\|emerg"),
    (r"\b(?:warnings?|warn)\b", "warn"),
    (r"\b(?:failures?|failed|fail|failing)\b", "fail"),
    (r"\b(?:errors?|err)\b", "error"),
]
DEFAULT_LOG_PATTERN = "error\\|fail\\|crit"

# The same questions on Windows: which event log, and which levels (XPath).
WINDOWS_EVENT_LOGS = {"syslog": "System", "kernel": "System", "auth": "Security", "application": "Application"}
WINDOWS_EVENT_QUERIES = {
    "error": "*[System[(Level=1 or Level=2)]]",
    "warn": "*[System[(Level=1 or Level=2 or Level=3)]]",
}

NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "fifty": 50,
}

FOLLOWUP_START = re.compile(
    r"^(?:and|also|what about|how about|same|now|then|ok|okay|alright|and what about|what of|likewise|too|do the same|same for|same thing|again)\b"
)


def case_insensitive(pattern: str) -> str:
    """``error`` -> ``[Ee][Rr][Rr][Oo][Rr]`` (grep BRE without -i)."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
            continue
        out.append(f"[{ch.upper()}{ch.lower()}]" if ch.isalpha() else ch)
        i += 1
    return "".join(out)

TAG_ALIASES_ALL = frozenset().union(*TAG_ALIASES)
