"""``make dev``: the whole studio on this machine, no cloud account needed.

Reads ``.env`` when present: services it configures are used as they are and no stand-in is
started for them. Data lives under ``.data/`` (or ``DATA_DIR``) and survives restarts.
Ctrl-C or SIGTERM stops every child process.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from dotenv import dotenv_values

from devstack.stack import ROOT, start_local_cloud, start_router, start_worker


def main() -> int:
    env_file = ROOT / ".env"
    file_env = {k: v for k, v in dotenv_values(env_file).items() if v} if env_file.exists() else {}
    settings_env = {**file_env, **{k: v for k, v in os.environ.items() if k in file_env}}
    data_dir = Path(os.environ.get("DATA_DIR", ROOT / ".data")).resolve()
    port = int(os.environ.get("PORT") or settings_env.get("PORT") or 3000)

    cloud = start_local_cloud(data_dir, settings_env=settings_env)
    # A local-only relaxation, explicit here and never set in production: the worker may fetch
    # loopback/private URLs, so videos served from this machine can be analysed.
    cloud.env.setdefault("SORASTUDIO_ALLOW_PRIVATE_URLS", "true")
    try:
        if os.environ.get("DEV_WORKER", "1") != "0":
            start_worker(cloud)
        server, app = start_router(cloud.env, port)
    except BaseException:
        cloud.stop()
        raise
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    local = [name for name, _ in cloud.procs]
    print(f"SoraStudio is running at http://127.0.0.1:{server.server_port}/", flush=True)
    print(f"  stand-ins: {', '.join(local) if local else 'none (using .env services)'}; data in {data_dir}",
          flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        app.close()
        cloud.stop()
        print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
