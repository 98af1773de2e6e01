"""SoraStudio Cloud: the core shared by the API functions and the workers."""

__version__ = "0.1.0"

import os as _os

# pydantic looks up plugins through installed-package metadata on first use (~5 ms of every
# function cold start); the studio uses none. Set PYDANTIC_DISABLE_PLUGINS=0 to turn them back on.
_os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "1")
