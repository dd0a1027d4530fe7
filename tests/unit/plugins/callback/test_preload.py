"""The preload callback imports the filter files under the names Ansible's plugin loader uses, and the
modules under the names the in-process action plugins import, so a worker forked afterwards resolves
the collection's filters and runs its modules without importing anything."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from ansible_collections.multicloud.interconnect.plugins.callback import preload

REPO = pathlib.Path(__file__).resolve().parents[4]
FILTER_DIR = REPO / "plugins" / "filter"
MODULE_DIR = REPO / "plugins" / "modules"
COLLECTIONS = REPO / ".collections"


def test_every_filter_file_and_module_is_loaded():
    files = [p.stem for directory in (FILTER_DIR, MODULE_DIR) for p in directory.glob("*.py") if p.stem != "__init__"]
    assert sorted(preload.preload()) == sorted(files)
    assert "ansible_collections.multicloud.interconnect.plugins.modules.cluster_objects" in sys.modules


# Run apart: the loader installs Ansible's collection finder, which the other unit tests do without.
LOADER_CHECK = """
import importlib.util, sys
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader([sys.argv[1]])
from ansible.plugins.loader import filter_loader
from ansible_collections.multicloud.interconnect.plugins.callback import preload
if sys.argv[2] == "preload":
    preload.preload()
imported = []
real = importlib.util.spec_from_file_location
def spy(name, *args, **kwargs):
    imported.append(str(name))
    return real(name, *args, **kwargs)
importlib.util.spec_from_file_location = spy
for name in ("multicloud.interconnect.cluster_cni", "multicloud.interconnect.cilium_values",
             "multicloud.interconnect.kernel_stop_message", "multicloud.interconnect.mesh_lease_holder"):
    assert filter_loader.get(name) is not None, name
print(",".join(sorted(n.rsplit(".", 1)[-1] for n in imported if n.startswith("ansible_collections.multicloud."))))
"""


@pytest.mark.parametrize(("mode", "expected"), [("preload", ""), ("none", "apiserver,ca_rotation,cilium")])
def test_after_preload_the_plugin_loader_imports_no_filter_file_again(mode, expected):
    run = subprocess.run([sys.executable, "-c", LOADER_CHECK, str(COLLECTIONS), mode], capture_output=True, text=True,
                         check=False, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    # without the preload the loader imports filter files (these first); with it, none
    imported = run.stdout.strip()
    assert imported == expected if not expected else imported.startswith(expected), imported
