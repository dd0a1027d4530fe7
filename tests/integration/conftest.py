"""Fixtures shared by the lab-backed suites.

``site_converged`` converges the lab's demo topology once per test session with the molecule
scenario ``default`` (its converge is ``playbooks/site.yml``); every suite that needs a converged
demo lab starts from it instead of converging again. Suites
that change the lab restore it before they end (their own teardown says how). Tests marked
``pristine_lab`` (site.yml --check from nothing) run first, before anything is applied.
"""

from __future__ import annotations

import pytest
from site_helpers import run_molecule  # pylint: disable=import-error


def pytest_collection_modifyitems(config, items):  # pylint: disable=unused-argument
    first = [item for item in items if item.get_closest_marker("pristine_lab") is not None]
    items[:] = first + [item for item in items if item.get_closest_marker("pristine_lab") is None]


@pytest.fixture(scope="session")
def site_converged(lab, tmp_path_factory):
    """(output directory with status.json, output) of molecule's converge (site.yml) on the demo topology."""
    out = tmp_path_factory.mktemp("site")
    return out, run_molecule("converge", env={"MOLECULE_STATUS_DIR": out}).output
