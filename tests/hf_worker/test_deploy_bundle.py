"""The worker's deploy bundle: ``hf-worker/deploy.py --dry-run``, then the bundle alone, as a Space gets it.

The bundle's requirements.txt goes into a fresh venv (the registry is reachable; a missing or wrong pin
shows up here, not in a Space build), and the worker runs from the bundle with that venv's Python
against its own local cloud. Its own cloud, not the shared ``cloud`` fixture: this worker claims
``video_analysis`` tasks, and on a shared queue it would take other tests' tasks.

Not covered here (no Docker engine, no Hub access): ``docker build`` of the Dockerfile and the real
upload to a Space.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from upstash_redis import Redis

from devstack.redisserver import free_port, wait_for_port
from devstack.stack import LocalCloud, start_local_cloud
from sorastudio.models import Task, TaskStatus, new_task_id, now_iso
from sorastudio.taskqueue import TaskQueue
from tests.hf_worker.videos import make_video

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hf_worker_bundle")]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "hf-worker" / "deploy.py"
INSTALL_TIMEOUT_S = 900
# Values the dry run must never print; random so a hit can't be a coincidence.
SECRET_VALUES = {name: f"{name.lower()}-{secrets.token_hex(8)}" for name in
                 ("UPSTASH_REDIS_REST_TOKEN", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_JWT_SECRET",
                  "WORKER_WAKE_TOKEN", "HF_TOKEN")}


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that would let a child see the repo or our venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "HF_TOKEN", "PYTHONSTARTUP"}}
    return {**env, **extra}


@dataclass(frozen=True)
class DryRun:
    bundle: Path
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> DryRun:
    tmp = tmp_path_factory.mktemp("deploy")
    env_file = tmp / "worker.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in SECRET_VALUES.items())
                        + "UPSTASH_REDIS_REST_URL=https://example.upstash.io\nSUPABASE_URL=https://p.supabase.co\n"
                        + "WORKER_WAKE_URLS=https://other-worker.example\nSORASTUDIO_ALLOW_PRIVATE_URLS=true\n")
    bundle = tmp / "bundle"
    # From another cwd with no HF_TOKEN: a dry run needs neither the repo as cwd nor a token.
    proc = subprocess.run([sys.executable, str(DEPLOY), "--space", "acme/Sora_Worker", "--env-file", str(env_file),
                           "--dry-run", str(bundle)], cwd=tmp, env=_clean_env(), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return DryRun(bundle, proc.stdout, proc.stderr)


def test_dry_run_prints_secret_names_never_values(dry_run: DryRun) -> None:
    out = dry_run.stdout + dry_run.stderr
    for name, value in SECRET_VALUES.items():
        assert name in out
        assert value not in out
    secrets_line = next(line for line in out.splitlines() if "secrets (" in line)
    assert "UPSTASH_REDIS_REST_URL" not in secrets_line  # URLs are plain variables
    assert "SORASTUDIO_ALLOW_PRIVATE_URLS" in out and "not sent" in out
    assert "https://acme-sora-worker.hf.space" in out
    assert "WORKER_WAKE_URLS=https://other-worker.example,https://acme-sora-worker.hf.space" in out


def test_bundle_layout(dry_run: DryRun) -> None:
    bundle = dry_run.bundle
    top = {p.name for p in bundle.iterdir()}
    assert {"Dockerfile", "README.md", "requirements.txt", "studio_worker", "sorastudio"} <= top
    assert (bundle / "studio_worker" / "__main__.py").is_file()
    assert (bundle / "sorastudio" / "taskqueue.py").is_file()
    everything = [p.relative_to(bundle) for p in bundle.rglob("*")]
    for path in everything:
        assert not {"tests", "devstack", "__pycache__", ".git", ".venv"} & set(path.parts), path
        assert path.name != ".env" and path.suffix not in {".pyc", ".pyo"}, path
    for value in SECRET_VALUES.values():  # the env file's values stay out of every file
        assert not any(value in p.read_text(errors="replace") for p in bundle.rglob("*") if p.is_file())

    dockerfile = (bundle / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.12-slim\b", dockerfile, re.M)
    assert re.search(r"useradd .*-u 1000 user", dockerfile)
    assert re.search(r"^USER user$", dockerfile, re.M)
    assert re.search(r"^EXPOSE 7860$", dockerfile, re.M)
    assert re.search(r'^CMD \["python", "-m", "studio_worker"\]$', dockerfile, re.M)
    assert "pip install --no-cache-dir -r" in dockerfile
    assert "PYTHONPATH=/home/user/app" in dockerfile
    # Every COPY source exists in the bundle (the build context).
    for src in re.findall(r"^COPY (?:--\S+ )*(\S+) ", dockerfile, re.M):
        assert (bundle / src).exists(), src

    card = (bundle / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n")
    front = card.split("---\n", 2)[1]
    assert "sdk: docker" in front.splitlines()
    assert "app_port: 7860" in front.splitlines()

    requirements = (bundle / "requirements.txt").read_text()
    pins = [line for line in requirements.splitlines() if line.strip() and not line.startswith("#")]
    assert pins and all("==" in line for line in pins), pins
    assert any(line.startswith("opencv-python-headless==4.") for line in pins)


def test_refuses_a_real_deploy_without_hf_token(tmp_path: Path) -> None:
    env_file = tmp_path / "worker.env"
    env_file.write_text("UPSTASH_REDIS_REST_URL=https://example.upstash.io\n")
    proc = subprocess.run([sys.executable, str(DEPLOY), "--space", "acme/worker", "--env-file", str(env_file)],
                          cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "HF_TOKEN is not set" in proc.stderr
    assert list(tmp_path.iterdir()) == [env_file]


def test_dry_run_refuses_to_overwrite_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    proc = subprocess.run([sys.executable, str(DEPLOY), "--dry-run", str(tmp_path)], cwd=tmp_path,
                          env=_clean_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout
    assert (tmp_path / "notes.txt").read_text() == "keep me"


# --- the bundle alone, in a fresh environment --------------------------------------------------------


@pytest.fixture(scope="module")
def fresh_python(dry_run: DryRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv (this interpreter's Python) with only the bundle's requirements.txt installed."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           "-r", str(dry_run.bundle / "requirements.txt")],
                          env=_clean_env(), capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    assert proc.returncode == 0, f"pip install -r requirements.txt failed:\n{proc.stdout}\n{proc.stderr}"
    return python


def test_requirements_cover_every_module(dry_run: DryRun, fresh_python: Path) -> None:
    """Import every module of the bundle with only its requirements (a lazy import that lacks one fails here)."""
    script = (
        "import importlib, pkgutil, os, cv2, studio_worker, sorastudio\n"
        "bundle = os.getcwd()\n"
        "for pkg in (studio_worker, sorastudio):\n"
        "    assert pkg.__file__.startswith(bundle), pkg.__file__\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        # OpenCV 4.x ships the Haar cascades the face signal loads (5.x dropped them).
        "assert os.path.isfile(cv2.data.haarcascades + 'haarcascade_frontalface_default.xml')\n"
    )
    proc = subprocess.run([str(fresh_python), "-c", script], cwd=dry_run.bundle,
                          env=_clean_env(PYTHONPATH=str(dry_run.bundle)), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def own_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    stack = start_local_cloud(tmp_path_factory.mktemp("bundle-cloud"), persist=False)
    stack.env["SORASTUDIO_ALLOW_PRIVATE_URLS"] = "true"
    yield stack
    stack.stop()


@dataclass
class BundleWorker:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def bundle_worker(dry_run: DryRun, fresh_python: Path, own_cloud: LocalCloud,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[BundleWorker]:
    """``python -m studio_worker`` from the bundle with the fresh venv: what the image's CMD runs."""
    port = free_port()
    work = tmp_path_factory.mktemp("bundle-worker")
    log = work / "worker.log"
    env = _clean_env(**own_cloud.env, WORKER_PORT=str(port), WORKER_HOST="127.0.0.1",
                     PYTHONPATH=str(dry_run.bundle), PYTHONUNBUFFERED="1", WORK_DIR=str(work),
                     POLL_MAX_SECONDS="2")
    with log.open("wb") as sink:
        proc = subprocess.Popen([str(fresh_python), "-m", "studio_worker"], cwd=dry_run.bundle, env=env,
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, timeout=60, proc=proc)
        yield BundleWorker(f"http://127.0.0.1:{port}", proc, log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_worker_from_bundle_answers_health_and_wake(bundle_worker: BundleWorker, own_cloud: LocalCloud) -> None:
    with httpx.Client(base_url=bundle_worker.url, timeout=10) as client:
        health = client.get("/health")
        assert health.status_code == 200, bundle_worker.log.read_text()
        body = health.json()
        assert body["ok"] is True
        assert "video_analysis" in body["processors"]
        assert client.post("/wake").status_code == 401
        token = own_cloud.env["WORKER_WAKE_TOKEN"]
        assert client.post("/wake", headers={"Authorization": f"Bearer {token}"}).status_code == 202
    assert bundle_worker.proc.poll() is None, bundle_worker.log.read_text()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture(scope="module")
def video_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tiny real MP4 (two scenes, one cut at frame 12) on a loopback HTTP server; yields its URL."""
    root = tmp_path_factory.mktemp("videos")
    make_video(root / "clip.mp4", width=160, height=90, fps=12, scenes=((12, "red"), (12, "blue")))
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/clip.mp4"
    server.shutdown()
    server.server_close()


def test_worker_from_bundle_analyses_a_video_end_to_end(bundle_worker: BundleWorker, own_cloud: LocalCloud,
                                                         video_server: str) -> None:
    """A real ``video_analysis`` task: fetch over HTTP, decode with PyAV, upload images to Storage."""
    env = own_cloud.env
    queue = TaskQueue(Redis(url=env["UPSTASH_REDIS_REST_URL"], token=env["UPSTASH_REDIS_REST_TOKEN"],
                            allow_telemetry=False), retention_seconds=3600)
    owner, now = str(uuid.uuid4()), now_iso()
    task = Task(id=new_task_id(), type="video_analysis", payload={"videoUrl": video_server}, owner=owner,
                created_at=now, updated_at=now)
    queue.create(task)
    httpx.post(f"{bundle_worker.url}/wake", headers={"Authorization": f"Bearer {env['WORKER_WAKE_TOKEN']}"})

    deadline = time.monotonic() + 120
    while True:
        snap = queue.read(task.id)
        assert snap is not None
        if snap.task.status.is_final:
            break
        assert time.monotonic() < deadline, f"still {snap.task.status} after 120 s:\n{bundle_worker.log.read_text()}"
        time.sleep(0.2)
    done = snap.task
    assert done.status is TaskStatus.DONE, f"{done.error}\n{bundle_worker.log.read_text()}"
    result = done.result or {}
    assert [s["startFrame"] for s in result["scenes"]] == [0, 12]
    assert result["media"]["video"]["width"] == 160
    assert result["bucket"] == "results"
    # The images really are in Storage, under <owner>/<task id>/.
    key = env["SUPABASE_SERVICE_ROLE_KEY"]
    with httpx.Client(base_url=f"{env['SUPABASE_URL']}/storage/v1", timeout=10,
                      headers={"Authorization": f"Bearer {key}", "apikey": key}) as storage:
        for path in [result["poster"], *(s["thumbnail"] for s in result["scenes"])]:
            assert path.startswith(f"{owner}/{task.id}/"), path
            got = storage.get(f"/object/authenticated/results/{path}")
            assert got.status_code == 200 and len(got.content) > 100, (path, got.status_code)
