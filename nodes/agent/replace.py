"""`replace css <cell> <no> --step ...` (spec nodes.md §4.2)."""

from __future__ import annotations

from .errors import Failed

STEPS = ("check", "join", "promote", "retire", "abort")


def step(ctx: object, cell: str, no: int, name: str, timeout: float) -> dict:
    raise Failed(f"replace --step {name} is not implemented in this version")
