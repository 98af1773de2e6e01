"""Fixtures' helpers for tests/public: expose each test's outcome to its fixtures (screenshots on failure)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Store the report of each phase as ``item.rep_setup`` / ``rep_call`` / ``rep_teardown``."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
