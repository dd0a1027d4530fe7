# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: preload
type: aggregate
short_description: Load the collection's filters and modules once, before Ansible forks its workers
version_added: 0.4.0
description:
  - Ansible runs every task for every host in a worker process forked from the controller's main process. A worker
    that templates one of this collection's filters looks it up among the collection's filter plugins, and so
    imports those files and the collection code they use; being a fresh fork, the next worker does it again.
  - The same holds for the collection's modules, which their action plugins run inside the worker when the
    connection is local (see C(plugins/plugin_utils/_in_process.py)).
  - This callback imports them once in the main process, when the playbook starts, so that every worker is forked
    with them already loaded. On a run that changes nothing that is about a fifth of the controller's CPU time.
  - It prints nothing and changes no result. The collection's C(ansible.cfg) enables it; elsewhere add
    C(multicloud.interconnect.preload) to C(callbacks_enabled).
author:
  - multicloud.interconnect maintainers (@multicloud)
requirements:
  - enabled through C(callbacks_enabled) (C(ANSIBLE_CALLBACKS_ENABLED))
"""

import importlib
import pkgutil

from ansible.plugins.callback import CallbackBase

# The packages Ansible's plugin loader (filters) and the in-process action plugins (modules) import
# the collection's files under, so that a worker finds each one in sys.modules. The collection
# loader compiles a file from source on every import: a worker that imports one itself pays that.
PACKAGES = ("ansible_collections.multicloud.interconnect.plugins.filter",
            "ansible_collections.multicloud.interconnect.plugins.modules")


def preload():
    """Import every filter plugin file and module of the collection; the names of those imported."""
    loaded = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module("%s.%s" % (name, info.name))
            loaded.append(info.name)
    return loaded


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "multicloud.interconnect.preload"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_start(self, playbook):
        try:
            preload()
        except Exception as err:  # pylint: disable=broad-exception-caught
            # The workers load what they need as they always do; only the time saved is lost.
            self._display.warning("multicloud.interconnect.preload could not load the collection's filters and modules: %s" % err)
