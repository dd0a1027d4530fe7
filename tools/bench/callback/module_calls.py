# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark aid: how many module runs and how many steps a playbook took, per host, written as JSON at the end.

A task result counts as a module run when its action runs a module (the collection's modules run inside
the task's worker on a local connection, other modules in a process of their own); the controller's own
actions do not: set_fact, debug, assert, includes, argument validation. A step is any task result of a
host, skipped ones included: Ansible templates the task and evaluates its condition for each host in a
worker it forks, so every step costs the run about the same whether it runs a module or not.
Enabled by tools/bench/bench_site.py only (MODULE_CALLS_FILE names the output).
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: module_calls
type: aggregate
short_description: count module runs per host (benchmark aid)
description:
  - Writes, per host, how many task results ran a module and how many task results (steps) there were, as JSON
    (an object with the keys C(modules) and C(steps), each host name to a count) to the file named by MODULE_CALLS_FILE.
requirements: [enable in configuration]
"""

import collections
import json
import os

from ansible.plugins.callback import CallbackBase

# Actions that run inside the controller process: no module is started for them.
CONTROLLER_ONLY = {
    "set_fact", "debug", "assert", "fail", "meta", "include_tasks", "import_tasks", "include_role", "import_role",
    "include_vars", "validate_argument_spec", "add_host", "group_by", "set_stats", "pause", "noop",
}


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "module_calls"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.calls = collections.Counter()
        self.steps = collections.Counter()

    def _count(self, result):
        action = result._task.action.split(".")[-1]  # pylint: disable=protected-access
        if action not in CONTROLLER_ONLY:
            self.calls[result._host.get_name()] += 1  # pylint: disable=protected-access

    def _step(self, result):
        self.steps[result._host.get_name()] += 1  # pylint: disable=protected-access

    def v2_runner_on_ok(self, result):
        self._step(result)
        task = result._task  # pylint: disable=protected-access
        if task.loop is not None or task.loop_with:
            return  # a loop: its items were counted one by one (a module may return a list named results too)
        self._count(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._step(result)
        self._count(result)

    def v2_runner_on_skipped(self, result):
        self._step(result)

    def v2_runner_on_unreachable(self, result):
        self._step(result)

    def v2_runner_item_on_ok(self, result):
        self._count(result)

    def v2_playbook_on_stats(self, stats):
        target = os.environ.get("MODULE_CALLS_FILE")
        if target:
            with open(target, "w", encoding="utf-8") as handle:
                json.dump({"modules": dict(self.calls), "steps": dict(self.steps)}, handle)
