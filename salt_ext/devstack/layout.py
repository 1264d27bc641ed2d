"""Where a stack keeps its state, which ports it uses, and its generated secrets."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# The demo fleet of `make up`: grains give each minion its ServerFlow tags and services.
DEMO_MINIONS: dict[str, dict[str, list[str]]] = {
    "demo-web-01": {"tags": ["demo", "prod", "web"], "services": ["nginx"]},
    "demo-db-01": {"tags": ["demo", "prod", "db"], "services": ["postgresql"]},
}


@dataclass(frozen=True)
class Ports:
    postgres: int = 15432
    redis: int = 16379
    publish: int = 14505
    ret: int = 14506
    api: int = 8000


@dataclass
class Layout:
    """Paths of one stack instance."""

    home: Path
    ports: Ports = field(default_factory=Ports)
    minions: dict[str, dict[str, list[str]]] = field(default_factory=lambda: dict(DEMO_MINIONS))
    repo: Path = REPO_ROOT

    def __post_init__(self) -> None:
        self.home = Path(self.home).resolve()

    @property
    def etc(self) -> Path:
        return self.home / "etc" / "salt"

    @property
    def run(self) -> Path:
        return self.home / "run"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def venv_bin(self) -> Path:
        return Path(os.environ.get("SERVERFLOW_VENV_BIN") or (self.repo / ".venv" / "bin"))

    def minion_dir(self, minion_id: str) -> Path:
        return self.etc / "minions" / minion_id

    @property
    def sock_root(self) -> Path:
        """IPC sockets live here; a short path, since Unix socket paths are capped at 107 bytes."""
        candidate = self.run / "sock"
        if len(str(candidate)) <= 60:
            return candidate
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"serverflow-{digest}"

    def secrets(self) -> dict[str, str]:
        """Generated once per stack and kept in ``secrets.json`` (mode 0600)."""
        path = self.home / "secrets.json"
        if path.exists():
            return json.loads(path.read_text())
        self.home.mkdir(parents=True, exist_ok=True)
        values = {name: secrets.token_urlsafe(18) for name in
                  ("postgres_password", "owner_password", "app_password", "api_secret")}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(values, handle, indent=2)
        return values

    def dsn(self, role: str = "app", database: str = "serverflow") -> str:
        sec = self.secrets()
        user, password = {
            "app": ("serverflow_app", sec["app_password"]),
            "owner": ("serverflow", sec["owner_password"]),
            "super": ("postgres", sec["postgres_password"]),
        }[role]
        return f"postgresql://{user}:{password}@127.0.0.1:{self.ports.postgres}/{database}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports.redis}/0"
