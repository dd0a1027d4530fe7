"""Shared test set-up: make the checkout importable as ansible_collections.multicloud.interconnect."""

from __future__ import annotations

import os
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
COLLECTIONS = REPO / ".collections"
LINK = COLLECTIONS / "ansible_collections" / "multicloud" / "interconnect"

if not LINK.exists():
    LINK.parent.mkdir(parents=True, exist_ok=True)
    os.symlink("../../..", LINK)
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
os.environ.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))

# The lab's session fixture (tools/lab), shared by every suite that needs real control planes.
sys.path.insert(0, str(REPO / "tests"))
from lab.conftest import Lab, lab  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import


# ---- where the time of a run goes, per suite (printed at the end; make test adds its own steps) ----

import json  # noqa: E402  pylint: disable=wrong-import-position,wrong-import-order

_SUITE_SECONDS: dict = {}


def _suite(item_or_report) -> str:
    """``tests/<dir>`` of a test; the pristine check-from-nothing tests are their own suite."""
    if "pristine_lab" in getattr(item_or_report, "keywords", {}):
        return "tests/integration (pristine lab)"
    return "/".join(item_or_report.nodeid.split("/")[:2])


def pytest_runtest_logreport(report):
    key = _suite(report)
    _SUITE_SECONDS[key] = _SUITE_SECONDS.get(key, 0.0) + report.duration


def pytest_runtest_setup(item):
    # Which suite pays for the lab's start-up when the lab fixture runs in this test's set-up.
    if getattr(item.config, "mci_lab_up", None) is None:
        item.config.mci_lab_up_suite = _suite(item)


def suite_split(config) -> list:
    """[(what, seconds)], longest first: the lab's build and start-up apart from the suite that paid for it."""
    split = dict(_SUITE_SECONDS)
    up, suite = getattr(config, "mci_lab_up", None), getattr(config, "mci_lab_up_suite", None)
    if up is not None and suite in split:
        split[suite] -= up
        split["lab build and start-up"] = up
    return sorted(split.items(), key=lambda kv: -kv[1])


def pytest_terminal_summary(terminalreporter, config):
    split = suite_split(config)
    if not split:
        return
    terminalreporter.section("time per suite")
    for what, seconds in split:
        terminalreporter.write_line("%-36s %8.1f s" % (what, seconds))
    target = os.environ.get("MCI_TEST_SPLIT")
    if target:
        pathlib.Path(target).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(target).write_text(json.dumps(split) + "\n", encoding="utf-8")
