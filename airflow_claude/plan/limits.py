"""Size limits a plan must respect; a deployment or an automation can tighten them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlanLimits:
    """Bounds checked before anything runs; every one is reported with its own error code."""

    max_steps: int = 500
    max_fan_in: int = 32
    max_fan_out: int = 64
    max_depth: int = 64
    max_level_width: int = 1024  # steps that may run side by side (Airflow's max_map_length is 1024)
    max_arg_bytes: int = 64_000
    max_nesting: int = 12
    max_file_bytes: int = 4_000_000


DEFAULT_LIMITS = PlanLimits()
