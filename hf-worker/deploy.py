#!/usr/bin/env python3
"""Deploy the worker to a Hugging Face Space (Docker), or only write its bundle for any Docker host.

    python hf-worker/deploy.py --space owner/name [--hardware t4-small] [--private] [--env-file .env]
    python hf-worker/deploy.py --space owner/name --variant gpu --hardware l4x1   # text_to_video too
    python hf-worker/deploy.py --space owner/name --dry-run build/worker    # bundle only, no network

The bundle is a self-contained Docker build context: Dockerfile, README.md (the Space card with its
front matter), requirements.txt (+ requirements-gpu.txt), ``studio_worker/`` and ``sorastudio/`` side
by side. ``--variant gpu`` makes the bundle's Dockerfile build the GPU image (torch + diffusers). Settings from
the env file become Space secrets (secret-like names) or variables (the rest). Secret values are
never printed. Needs ``huggingface_hub`` and ``python-dotenv`` (only the latter for ``--dry-run``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

WORKER_DIR = Path(__file__).resolve().parent
ROOT = WORKER_DIR.parent
# Top-level files of the bundle, copied from hf-worker/.
BUNDLE_FILES = ("Dockerfile", ".dockerignore", "README.md", "requirements.txt", "requirements-gpu.txt", ".env.example")
# Packages copied next to each other at the bundle root (the image's PYTHONPATH).
BUNDLE_PACKAGES = {"studio_worker": WORKER_DIR / "studio_worker", "sorastudio": ROOT / "sorastudio"}
COPY_IGNORE = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis",
    "tests", "conftest.py", ".env", ".env.*", "*.egg-info", ".DS_Store",
)
# Names that must never reach an image or a Space repo, wherever they appear in the bundle.
FORBIDDEN_NAMES = {".env", "__pycache__", "tests", "devstack", ".git", ".venv"}

# A name with one of these parts (split on "_") is stored as a Space secret, not a variable.
SECRET_PARTS = {"TOKEN", "SECRET", "KEY", "PASSWORD", "PASSWD", "PASS", "PWD", "CREDENTIAL", "CREDENTIALS",
                "DSN", "COOKIE", "AUTH", "SIGNATURE", "SALT"}
# Settings in a project .env that a Space worker must not get, and why.
NOT_FOR_WORKER = {
    "PORT": "the local dev server's port",
    "WORKER_WAKE_URLS": "an API (Vercel) setting",
    "WORKER_HOST": "a Space worker must listen on 0.0.0.0",
    "WORKER_PORT": "Spaces route app_port 7860 (README front matter)",
    "SORASTUDIO_ALLOW_PRIVATE_URLS": "local development only; a cloud worker must never fetch private URLs",
}
VARIANTS = ("cpu", "gpu")
# What a GPU worker runs unless the env file says otherwise (it also takes CPU tasks when idle).
GPU_TASK_TYPES = "video_analysis,text_to_video"
DOCKERFILE_VARIANT = re.compile(r"^ARG VARIANT=\w+$", re.MULTILINE)
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class DeployError(Exception):
    """A problem the user can fix; printed without a traceback."""


class HubApi(Protocol):
    """The part of ``huggingface_hub.HfApi`` a deploy uses (a recorder can stand in for it)."""

    def create_repo(self, repo_id: str, *, private: bool | None = None, repo_type: str | None = None,
                    exist_ok: bool = False, space_sdk: str | None = None, space_hardware: Any = None) -> Any: ...
    def add_space_secret(self, repo_id: str, key: str, value: str) -> Any: ...
    def add_space_variable(self, repo_id: str, key: str, value: str) -> Any: ...
    def upload_folder(self, *, repo_id: str, folder_path: str | Path, commit_message: str | None = None,
                      repo_type: str | None = None, delete_patterns: list[str] | str | None = None) -> Any: ...
    def request_space_hardware(self, repo_id: str, hardware: Any) -> Any: ...
    def space_info(self, repo_id: str) -> Any: ...


@dataclass(frozen=True)
class SpacePlan:
    """What a deploy sets on the Space. ``secrets`` stays out of ``repr`` so it can't leak into logs."""

    repo_id: str
    private: bool = False
    hardware: str | None = None
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    variables: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why

    @property
    def space_url(self) -> str:
        return f"https://huggingface.co/spaces/{self.repo_id}"

    @property
    def app_url(self) -> str:
        """The Space's own host (``owner-name.hf.space``), where /health and /wake answer."""
        return f"https://{re.sub(r'[^a-z0-9]+', '-', self.repo_id.lower()).strip('-')}.hf.space"


# --- the bundle --------------------------------------------------------------------------------------


def _looks_like_bundle(path: Path) -> bool:
    names = {p.name for p in path.iterdir()}
    return {"Dockerfile", "studio_worker"} <= names and names <= {*BUNDLE_FILES, *BUNDLE_PACKAGES}


def build_bundle(dest: Path, variant: str = "cpu") -> Path:
    """Write the Docker build context to ``dest`` (new, empty, or a previous bundle, which is replaced).

    ``variant`` becomes the Dockerfile's ``ARG VARIANT`` default: a Space builds without build args.
    """
    if variant not in VARIANTS:
        raise DeployError(f"unknown variant {variant!r}; one of: {', '.join(VARIANTS)}")
    dest = dest.resolve()
    for src in BUNDLE_PACKAGES.values():
        if dest.is_relative_to(src.resolve()):
            raise DeployError(f"{dest} is inside {src}: pick a bundle folder outside the sources")
    if dest.exists():
        if not dest.is_dir():
            raise DeployError(f"{dest} exists and is not a folder")
        if any(dest.iterdir()):
            if not _looks_like_bundle(dest):
                raise DeployError(f"{dest} is not empty and not a previous bundle; refusing to overwrite it")
            shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in BUNDLE_FILES:
        src = WORKER_DIR / name
        if not src.is_file():
            raise DeployError(f"missing {src}")
        shutil.copy2(src, dest / name)
    for name, src in BUNDLE_PACKAGES.items():
        if not (src / "__init__.py").is_file():
            raise DeployError(f"missing package {src}")
        shutil.copytree(src, dest / name, ignore=COPY_IGNORE)
    card = (dest / "README.md").read_text(encoding="utf-8")
    front = card.split("---", 2)[1] if card.startswith("---\n") else ""
    if "sdk: docker" not in front or "app_port: 7860" not in front:
        raise DeployError("hf-worker/README.md must start with Space front matter (sdk: docker, app_port: 7860)")
    dockerfile = (dest / "Dockerfile").read_text(encoding="utf-8")
    if len(DOCKERFILE_VARIANT.findall(dockerfile)) != 1:
        raise DeployError("hf-worker/Dockerfile must declare exactly one `ARG VARIANT=<cpu|gpu>` line")
    (dest / "Dockerfile").write_text(DOCKERFILE_VARIANT.sub(f"ARG VARIANT={variant}", dockerfile), encoding="utf-8")
    if bad := forbidden_entries(dest):
        raise DeployError(f"bundle would contain {', '.join(bad)}")
    return dest


def forbidden_entries(bundle: Path) -> list[str]:
    """Paths in ``bundle`` that must never ship (secrets, caches, tests, dev tooling)."""
    return sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*")
                  if p.name in FORBIDDEN_NAMES or p.suffix in {".pyc", ".pyo"})


def bundle_files(bundle: Path) -> list[Path]:
    return sorted(p for p in bundle.rglob("*") if p.is_file())


# --- settings ----------------------------------------------------------------------------------------


def is_secret(name: str, value: str = "") -> bool:
    """Secret-like by name, or a URL that carries credentials (``scheme://user:pass@host``)."""
    return bool(SECRET_PARTS & set(name.upper().split("_"))) or bool(re.match(r"^[a-z][a-z0-9+.-]*://[^/@]+@", value))


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` pairs (python-dotenv syntax); keys without a value are dropped."""
    try:
        from dotenv import dotenv_values
    except ImportError as exc:
        raise DeployError("python-dotenv is needed to read the env file: pip install python-dotenv") from exc
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def plan_space(repo_id: str, env: Mapping[str, str], *, private: bool = False,
               hardware: str | None = None, variant: str = "cpu") -> SpacePlan:
    """Sort the env file's settings into secrets, variables and what a Space worker must not get.

    A GPU worker gets ``WORKER_TASK_TYPES`` (video_analysis and text_to_video) unless the env file sets it.
    """
    secrets: dict[str, str] = {}
    variables: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name, value in env.items():
        if name in NOT_FOR_WORKER:
            skipped[name] = NOT_FOR_WORKER[name]
        elif name.startswith("VERCEL_"):
            skipped[name] = "a Vercel setting"
        elif value == "":
            # An empty variable would override the worker's default with "" (an error for numbers).
            skipped[name] = "empty"
        elif is_secret(name, value):
            secrets[name] = value
        else:
            variables[name] = value
    if variant == "gpu" and not env.get("WORKER_TASK_TYPES"):
        variables["WORKER_TASK_TYPES"] = GPU_TASK_TYPES
    return SpacePlan(repo_id, private, hardware, secrets, variables, skipped)


def wake_urls(plan: SpacePlan, env: Mapping[str, str], app_url: str | None = None) -> str:
    """WORKER_WAKE_URLS for Vercel: the env file's list plus this Space, without duplicates."""
    urls = [u.strip().rstrip("/") for u in env.get("WORKER_WAKE_URLS", "").split(",") if u.strip()]
    return ",".join(dict.fromkeys([*urls, app_url or plan.app_url]))


# --- the network part ------------------------------------------------------------------------------


def push(api: HubApi, plan: SpacePlan, bundle: Path, *, commit_message: str = "Deploy SoraStudio worker",
         log: Any = print) -> str:
    """Create or reuse the Space, store its settings, upload the bundle; return the app URL.

    Settings go in before the upload so the build the upload triggers starts with them.
    """
    api.create_repo(plan.repo_id, repo_type="space", space_sdk="docker", private=plan.private, exist_ok=True,
                    space_hardware=plan.hardware)
    log(f"Space {plan.repo_id}: ready")
    for key, value in sorted(plan.secrets.items()):
        api.add_space_secret(plan.repo_id, key, value)
    for key, value in sorted(plan.variables.items()):
        api.add_space_variable(plan.repo_id, key, value)
    log(f"set {len(plan.secrets)} secrets, {len(plan.variables)} variables")
    if plan.hardware:
        # create_repo applies hardware only to a new Space; this also moves an existing one.
        api.request_space_hardware(plan.repo_id, plan.hardware)
        log(f"requested hardware {plan.hardware}")
    # delete_patterns="*": the Space mirrors the bundle, so a module deleted here is gone there too
    # (the hub never deletes .gitattributes).
    api.upload_folder(folder_path=str(bundle), repo_id=plan.repo_id, repo_type="space",
                      commit_message=commit_message, delete_patterns="*")
    log("uploaded the bundle; the Space rebuilds from it")
    try:
        host = getattr(api.space_info(plan.repo_id), "host", None)
    except Exception:  # the URL is only informational; fall back to the documented naming
        host = None
    return str(host).rstrip("/") if host else plan.app_url


# --- command line ----------------------------------------------------------------------------------


def _git_describe() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _names(items: Iterable[str]) -> str:
    return ", ".join(sorted(items)) or "none"


def describe(plan: SpacePlan, *, dry_run: bool, variant: str = "cpu") -> list[str]:
    """What a deploy sets, for humans: secret names only, variable values (not secret by definition)."""
    visibility = "private" if plan.private else "public"
    lines = [
        f"{'would create' if dry_run else 'create'} or reuse Space {plan.repo_id} "
        f"(sdk docker, {visibility}, hardware {plan.hardware or 'unchanged (new Spaces: cpu-basic)'}, "
        f"{variant} image)",
        f"secrets ({len(plan.secrets)}): {_names(plan.secrets)}",
        f"variables ({len(plan.variables)}): "
        + (", ".join(f"{k}={v}" for k, v in sorted(plan.variables.items())) or "none"),
    ]
    lines += [f"not sent: {name} ({why})" for name, why in sorted(plan.skipped.items())]
    for required in ("UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"):
        if required not in plan.secrets and required not in plan.variables:
            lines.append(f"warning: {required} is not set; the worker exits without it")
    if "WORKER_WAKE_TOKEN" not in plan.secrets:
        lines.append("warning: WORKER_WAKE_TOKEN is not set; POST /wake will answer 401")
    on_gpu = bool(plan.hardware) and not str(plan.hardware).startswith(("cpu-", "zero-"))
    if variant == "gpu" and not on_gpu:
        lines.append("warning: the GPU image on CPU hardware runs text_to_video on the CPU (far too slow "
                     "for the default model); pass --hardware, e.g. l4x1 or a10g-small")
    if variant == "cpu" and on_gpu:
        lines.append("warning: GPU hardware with the CPU image (no torch): pass --variant gpu for text_to_video")
    types = plan.variables.get("WORKER_TASK_TYPES", "")
    if variant == "cpu" and "text_to_video" in types:
        lines.append("warning: WORKER_TASK_TYPES lists text_to_video but the CPU image can't run it "
                     "(its tasks would fail with model_unavailable)")
    if plan.private:
        lines.append("warning: a private Space only answers requests that carry a Hugging Face token, so the API's "
                     "/wake nudge can't reach it; the worker still polls the queue")
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--space", metavar="OWNER/NAME", help="the Space repo id (required unless --dry-run)")
    parser.add_argument("--hardware", help="Space hardware, e.g. cpu-basic, cpu-upgrade, t4-small, l4x1, a10g-small")
    parser.add_argument("--variant", choices=VARIANTS, default="cpu",
                        help="the image: cpu (video_analysis) or gpu (adds text_to_video: torch + diffusers)")
    parser.add_argument("--private", action="store_true", help="create the Space private (no /wake: see README)")
    parser.add_argument("--env-file", type=Path, help="settings to store on the Space (default: .env if present)")
    parser.add_argument("--dry-run", type=Path, metavar="OUT_DIR",
                        help="only write the bundle to OUT_DIR and print what a deploy would set")
    args = parser.parse_args(argv)
    if not args.space and not args.dry_run:
        parser.error("--space OWNER/NAME is required (or --dry-run OUT_DIR to only write the bundle)")
    if args.space and not REPO_ID.match(args.space):
        parser.error(f"--space must look like owner/name, not {args.space!r}")
    return args


def _check_hardware(name: str | None, *, required: bool) -> None:
    if name is None:
        return
    try:
        from huggingface_hub import SpaceHardware
    except ImportError:
        if required:
            raise
        return  # dry run without huggingface_hub: the hub checks the name at deploy time
    known = [h.value for h in SpaceHardware]
    if name not in known:
        raise DeployError(f"unknown --hardware {name!r}; one of: {', '.join(known)}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    env_path: Path | None = args.env_file or (Path(".env") if Path(".env").is_file() else None)
    try:
        if env_path is not None and not env_path.is_file():
            raise DeployError(f"env file {env_path} not found")
        env = read_env_file(env_path) if env_path else {}
        plan = plan_space(args.space or "OWNER/NAME", env, private=args.private, hardware=args.hardware,
                          variant=args.variant)

        if args.dry_run:
            _check_hardware(args.hardware, required=False)
            bundle = build_bundle(args.dry_run, args.variant)
            files = bundle_files(bundle)
            size = sum(p.stat().st_size for p in files)
            print(f"bundle: {bundle} ({len(files)} files, {size // 1024} KiB)")
            print(f"dry run, nothing sent; settings from {env_path or '(no env file)'}:")
            for line in describe(plan, dry_run=True, variant=args.variant):
                print(f"  {line}")
            if args.space:
                print(f"Space: {plan.space_url}")
                print(f"worker URL: {plan.app_url} (GET /health)")
                print(f"on Vercel: WORKER_WAKE_URLS={wake_urls(plan, env)}")
            print(f"any Docker host: docker build -t sorastudio-worker {bundle}")
            return 0

        token = os.environ.get("HF_TOKEN") or env.get("HF_TOKEN")
        if not token:
            raise DeployError("HF_TOKEN is not set (environment or env file): create a write token at "
                              "https://huggingface.co/settings/tokens, or use --dry-run OUT_DIR")
        if env_path is None:
            raise DeployError("no settings: pass --env-file (a worker without UPSTASH_REDIS_REST_* exits at once)")
        try:
            from huggingface_hub import HfApi
        except ImportError as exc:
            raise DeployError("huggingface_hub is needed: pip install huggingface-hub") from exc
        _check_hardware(args.hardware, required=True)
        for line in describe(plan, dry_run=False, variant=args.variant):
            print(line)
        with tempfile.TemporaryDirectory(prefix="sorastudio-worker-") as tmp:
            bundle = build_bundle(Path(tmp) / "bundle", args.variant)
            app_url = push(HfApi(token=token), plan, bundle,
                           commit_message=f"Deploy SoraStudio worker ({_git_describe()})")
        print(f"Space: {plan.space_url}")
        print(f"worker URL: {app_url} (GET /health; the first build takes a few minutes)")
        print(f"on Vercel: WORKER_WAKE_URLS={wake_urls(plan, env, app_url)} (and the same WORKER_WAKE_TOKEN)")
        return 0
    except DeployError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
