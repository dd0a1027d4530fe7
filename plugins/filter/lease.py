# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the mesh lease (plugins/module_utils/_lease.py, roles/mesh_lease).

mesh_lease_holder(user, job=None)
    who holds the lease for this run: ``alice@ctl-1 job 4711 pid 812 run 3f2a9c1d`` (the AWX job's
    user and ID) or ``alice@ctl-1 pid 812 run 3f2a9c1d`` from a shell. The pid is the
    ansible-playbook process (templating runs in its forked workers), so a later run on this
    controller can tell that a failed run has ended; the run part makes every run its own holder.
"""

from __future__ import annotations

import os

from ansible_collections.multicloud.interconnect.plugins.module_utils._lease import holder_identity


def mesh_lease_holder(user, job=None):
    return holder_identity(user, os.getppid(), job)


class FilterModule:
    def filters(self):
        return {"mesh_lease_holder": mesh_lease_holder}
