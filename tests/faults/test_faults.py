"""The fault-injection suite on the LocalExecutor: faults injected into a real Airflow, side effects counted.

Promises measured (figures in docs/reliability.md; rerun with ``scripts/faults.sh N``):

- every run reaches the terminal state its fault calls for;
- no side effect is performed twice for one step of one run (the external ledger says so);
- no step output is lost (a succeeded step has its output; an effect has a succeeded step);
- every failed run undoes its finished mutating steps, in reverse order.
"""

from __future__ import annotations

import pytest

from .harness import Environment
from .suite import run_suite

pytestmark = [pytest.mark.faults, pytest.mark.e2e]


def test_faults_keep_effects_once_and_outputs_whole(
    fault_environment: Environment, request: pytest.FixtureRequest
) -> None:
    run_suite(fault_environment, request.config, "LocalExecutor")
