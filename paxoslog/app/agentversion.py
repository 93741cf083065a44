"""Is the agent on a host this admin's own version? (issue 9 item 4: `status deploy` and
`status css --long` report an agent whose version differs.)

The agent's `paxos-node version` result carries `agent` (the installed paxoslog version) and
`build` (the build id `paxos install` put in its wheel; null when it runs from a source tree).
"""

from __future__ import annotations

from typing import Any

from paxoslog.app import wheels
from paxoslog.remote.agentcall import node_command, parse_reply

VERSION_TIMEOUT = 10.0


def agent_version_mismatch(reply: Any) -> str | None:
    """A one-line reason when the agent that answered `paxos-node version` (an `AgentReply`)
    is not this admin's version and build; None when it is, or when the reply carries no
    version (a failed call is reported as such by the caller)."""
    found = agent_identity(reply)
    if found is None:
        return None
    version, build = found
    mine = wheels.local_version()
    if version != mine:
        return f"agent version {version} differs from the admin's {mine}"
    if build is not None and build != wheels.local_build():
        return f"agent build {build} differs from the admin's {wheels.local_build()}"
    return None


def agent_identity(reply: Any) -> tuple[str, str | None] | None:
    """(version, build) from a `paxos-node version` reply, validated; None if it has none."""
    result = getattr(reply, "result", None)
    if not getattr(reply, "ok", False) or not isinstance(result, dict):
        return None
    version, build = result.get("agent"), result.get("build")
    if not (isinstance(version, str) and 0 < len(version) <= 64 and version.isprintable()):
        return None
    if not (isinstance(build, str) and 0 < len(build) <= 40 and build.isalnum()):
        build = None
    return version, build


def version_keys(conn: Any, host: str) -> dict[str, Any]:
    """`status deploy`'s keys for a host reached over SSH: `agent: differs` with the agent's
    `agent_version` and `agent_build` when its agent is not this admin's build; nothing when
    it is, or when no agent answers (not installed, or failing: `status css` reports those)."""
    r = conn.run([*node_command(), "--format", "json", "version"], timeout=VERSION_TIMEOUT)
    reply = parse_reply(host, r.code, r.stdout, r.stderr)
    if agent_version_mismatch(reply) is None:
        return {}
    version, build = agent_identity(reply)  # type: ignore[misc]
    return {"agent": "differs", "agent_version": version, "agent_build": build}
