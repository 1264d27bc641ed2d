"""A wheel install carries the loader directories and registers them with Salt's loader."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(REPO)], check=True, capture_output=True)
    (path,) = out.glob("serverflow-*.whl")
    return path


def test_wheel_contains_loader_dirs_migrations_and_entry_point(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for loader_file in ("_engines/serverflow.py", "_runners/serverflow.py",
                        "_modules/serverflow.py", "_states/serverflow.py"):
        assert any(n.endswith("data/data/share/serverflow/" + loader_file) for n in names), loader_file
    assert "salt_ext/db/migrations/0001_core.sql" in names
    (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[salt.loader]" in text and "salt_ext.loader:get_loader_dirs" in text


def test_installed_wheel_points_salt_at_its_own_loader_dirs(wheel, tmp_path):
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"),
                    "install", "--no-deps", "-q", str(wheel)], check=True, capture_output=True)
    probe = ("import json; from importlib.metadata import entry_points; "
             "(ep,) = [e for e in entry_points(group='salt.loader') if e.name == 'serverflow']; "
             "print(json.dumps(ep.load()()))")
    out = subprocess.run([str(env / "bin" / "python"), "-c", probe], check=True,
                         capture_output=True, text=True, cwd=tmp_path).stdout
    dirs = json.loads(out)
    for kind in ("modules", "engines", "runners", "states"):
        (path,) = dirs[kind]
        assert path.startswith(str(env)), path
        assert (Path(path) / "serverflow.py").is_file()
