# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Runs the kosmos_link module in the task's worker when the connection is local (plugin_utils/_in_process.py).
from __future__ import annotations

from ansible_collections.multicloud.interconnect.plugins.plugin_utils._in_process import InProcessModule


class ActionModule(InProcessModule):
    pass
