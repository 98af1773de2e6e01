"""Serve one ``api/**.py`` function in its own process, the way Vercel's Python runtime does.

``python -m devstack.funchost ROOT api/status.py`` puts ROOT first on ``sys.path`` (as Vercel
does), imports the file, serves its top-level ``handler`` class with ``ThreadingHTTPServer`` on
127.0.0.1 and a free port, and prints ``{"port": N}`` on stdout once it listens.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def load_handler(root: Path, file: Path) -> type[BaseHTTPRequestHandler]:
    """Import ``file`` as a module and return its ``handler``/``Handler`` class."""
    sys.path.insert(0, str(root))
    module_name = "vc_function_" + "_".join(file.with_suffix("").parts)
    spec = importlib.util.spec_from_file_location(module_name, root / file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    for name in ("handler", "Handler"):
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, BaseHTTPRequestHandler):
            return cls
    raise ImportError(f"{file} defines no handler(BaseHTTPRequestHandler)")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    root, file = Path(args[0]).resolve(), Path(args[1])
    server = ThreadingHTTPServer(("127.0.0.1", 0), load_handler(root, file))
    server.daemon_threads = True
    print(json.dumps({"port": server.server_port}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
