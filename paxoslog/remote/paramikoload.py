"""Importing paramiko without `importlib.metadata` (issue 9: start-up time of one-shot commands).

paramiko's `__init__` imports `importlib.metadata` (email, zipfile, pathlib, csv...) only to set
`paramiko.__version__`, which its transport puts in the client banner. That import is about 40
ms of CPU, a third of paramiko's own import and a good part of a `status css` call on a loaded
admin host. The version is also the name of paramiko's `.dist-info` folder beside the package,
so while paramiko is first imported, `importlib.metadata` is stood in for by a module whose
`version()` answers for paramiko only; the stand-in is removed right after, so a later
`import importlib.metadata` gets the real one. Whenever the version cannot be found that way
(another layout, several dist-infos), paramiko is imported the ordinary way.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import sys
import types
from typing import Any

_VERSION = re.compile(r"[0-9][0-9A-Za-z.+!_-]{0,63}")


def _dist_version() -> str | None:
    """paramiko's version from the one `paramiko-<version>.dist-info` beside the package."""
    import importlib.util

    spec = importlib.util.find_spec("paramiko")
    if spec is None or not spec.origin:
        return None
    site = os.path.dirname(os.path.dirname(spec.origin))
    try:
        names = [n for n in os.listdir(site)
                 if n.startswith("paramiko-") and n.endswith(".dist-info")]
    except OSError:
        return None
    if len(names) != 1:
        return None
    version = names[0][len("paramiko-"):-len(".dist-info")]
    return version if _VERSION.fullmatch(version) else None


def load() -> types.ModuleType:
    """The paramiko module, imported once per process, as cheaply as is safe."""
    if "paramiko" in sys.modules or "importlib.metadata" in sys.modules:
        import paramiko

        return paramiko
    version = _dist_version()
    if version is None:
        import paramiko

        return paramiko

    stand_in = types.ModuleType("importlib.metadata")

    def remove_stand_in() -> None:
        if sys.modules.get("importlib.metadata") is stand_in:
            del sys.modules["importlib.metadata"]
        if getattr(importlib, "metadata", None) is stand_in:
            del importlib.metadata  # type: ignore[attr-defined]

    def real(attr: str) -> Any:
        """Anything else asked of the stand-in (a name, another package's version) comes from
        the real module, imported then: only paramiko's own question is answered here."""
        remove_stand_in()
        import importlib.metadata

        return getattr(importlib.metadata, attr)

    def only_paramiko(name: str) -> str:
        return version if name == "paramiko" else real("version")(name)

    stand_in.version = only_paramiko  # type: ignore[attr-defined]
    stand_in.__getattr__ = real  # type: ignore[attr-defined]  # PEP 562
    sys.modules["importlib.metadata"] = stand_in
    try:
        import paramiko
    finally:
        remove_stand_in()
    return paramiko


# Modules that use paramiko import it from here (`from paxoslog.remote.paramikoload import
# paramiko`), so whichever of them comes first in a process, paramiko is loaded this way.
paramiko = load()
# paramiko's transport thread logs a connection lost under it (a hung host's socket, closed by
# our connect timeout) at ERROR with a traceback. With no handler of its own, Python's
# last-resort handler printed that on the operator's terminal after our one-line message; its
# records now reach a handler only when the CLI configured one (-vv, --debug).
logging.getLogger("paramiko").addHandler(logging.NullHandler())
