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
