"""The VM-backed tests boot qemu several times (slow without KVM): they run through `make test-vm`."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config, items):  # pylint: disable=unused-argument
    if os.environ.get("MCI_VM_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="boots a VM; run `make test-vm` (sets MCI_VM_TESTS=1)")
    for item in items:
        if item.get_closest_marker("vm") is not None:
            item.add_marker(skip)
