# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one of the collection's modules inside the worker that runs its task, when that is the same Python.

Every module of this collection runs where the kubeconfigs and the CA files are: on the controller,
through a local connection. Ansible would still start a new Python for each task and host, unpack
the module's zip and compile ``ansible.module_utils`` from source there, about 0.25 s of CPU before
the module does anything, which is most of what a module costs on a run that changes nothing.

The action plugin of each module calls the module's ``main()`` in the worker process instead (the
worker is forked for this one task and exits after it), with the arguments Ansible would have sent
it, and hands what ``exit_json``/``fail_json`` print to Ansible's own result parser. Check mode,
diff, ``no_log`` options and failures are therefore handled by the same ``AnsibleModule`` code
as in a module process. It falls back to a module process whenever the two could differ: another
connection than ``local`` (a module may be run on a jump host that holds the kubeconfigs), become,
async, a task ``environment``, an ``ansible_python_interpreter`` other than the controller's
Python, or an ansible-core release this code was not tested with (it sets the module arguments
where ``AnsibleModule`` of that release reads them, a private detail of ansible-core). Setting
``MULTICLOUD_INTERCONNECT_MODULE_PROCESS=1`` in the controller's environment always uses a module
process (to compare the two, or to debug a module with ``ANSIBLE_KEEP_REMOTE_FILES``).
"""
from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import sys
import traceback

from ansible.module_utils import basic
from ansible.release import __version__ as ansible_core_version
from ansible.module_utils.common.json import Direction, get_module_encoder
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash
from ansible.vars.clean import remove_internal_keys

COLLECTION = "multicloud.interconnect"
MODULES_PACKAGE = "ansible_collections.multicloud.interconnect.plugins.modules"
# Ansible's default serialization profile for modules, the one every module of this collection uses.
PROFILE = "legacy"
FORCE_PROCESS_ENV = "MULTICLOUD_INTERCONNECT_MODULE_PROCESS"
# The ansible-core releases whose module argument globals and result parsing this code follows; any
# other release runs module processes until it is tested here.
TESTED_CORE_RELEASES = ("2.19",)

display = Display()


def module_name_of(resolved_action):
    """The short name of a module of this collection (``multicloud.interconnect.x`` -> ``x``), else None."""
    prefix = COLLECTION + "."
    if resolved_action and resolved_action.startswith(prefix):
        return resolved_action[len(prefix):]
    return None


def same_python(interpreter, executable=None):
    """Whether a module run with ``interpreter`` would run in this Python. Unset or left to discovery
    (``auto``, ``auto_silent``, ...) counts as this one: on a local connection this collection's modules
    belong in the Python whose packages the controller was installed with."""
    if not interpreter or str(interpreter).startswith("auto"):
        return True
    executable = executable or sys.executable
    return os.path.realpath(interpreter) == os.path.realpath(executable)


def core_release_tested(version=None):
    """Whether modules may run in the worker under this ansible-core (``2.19.14`` -> its release ``2.19``)."""
    release = ".".join((version or ansible_core_version).split(".")[:2])
    return release in TESTED_CORE_RELEASES


def run_main(module, json_params):
    """Run a module's main() with ``json_params`` as its arguments: (exit code, what it printed).

    An exception that is not SystemExit is reported as the AnsiballZ wrapper would: a failed result
    that carries the traceback."""
    stdout = io.StringIO()
    saved = basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE  # pylint: disable=protected-access
    basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE = json_params, PROFILE  # pylint: disable=protected-access
    try:
        with contextlib.redirect_stdout(stdout):
            module.main()
        return 1, json.dumps({"failed": True, "msg": "module %s returned without exit_json or fail_json"
                              % module.__name__.rsplit(".", 1)[-1]})
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        return code, stdout.getvalue()
    except Exception as err:  # pylint: disable=broad-exception-caught
        return 1, json.dumps({"failed": True, "msg": "module %s failed: %s: %s"
                              % (module.__name__.rsplit(".", 1)[-1], type(err).__name__, err),
                              "exception": traceback.format_exc()})
    finally:
        basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE = saved  # pylint: disable=protected-access


class InProcessModule(ActionBase):
    """The action plugin of every module of this collection: see the module docstring."""

    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        module = self._in_process_module(task_vars)
        if module is None:
            wrap_async = self._task.async_val and not self._connection.has_native_async
            result = merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)  # pylint: disable=protected-access
            return result
        return merge_hash(result, self._run_in_process(module, task_vars))

    def _interpreter(self, task_vars):
        """The ansible_python_interpreter a module process would use (the delegated host's when delegated)."""
        variables = task_vars
        if self._task.delegate_to:
            variables = (task_vars.get("ansible_delegated_vars") or {}).get(self._task.delegate_to, {})
        interpreter = variables.get("ansible_python_interpreter")
        if interpreter is None:
            return None
        return self._templar.template(interpreter)

    def _in_process_module(self, task_vars):
        """The imported module to run in this process, or None when a module process must run it."""
        name = module_name_of(self._task.resolved_action)
        if (name is None or boolean(os.environ.get(FORCE_PROCESS_ENV, ""), strict=False)
                or self._connection.transport != "local" or self._task.async_val or self._play_context.become
                or self._compute_environment_string() or not same_python(self._interpreter(task_vars))
                or not core_release_tested()):
            return None
        try:
            return importlib.import_module("%s.%s" % (MODULES_PACKAGE, name))
        except ImportError:
            # A library the module needs is missing here: the module process reports it as it always does.
            return None

    def _run_in_process(self, module, task_vars):
        display.vvv("Running %s in the task's worker process (local connection, the controller's Python)"
                    % self._task.resolved_action, host=self._play_context.remote_addr)
        module_args = dict(self._task.args)
        self._update_module_args(self._task.resolved_action, module_args, task_vars)
        encoder = get_module_encoder(PROFILE, Direction.CONTROLLER_TO_MODULE)
        json_params = json.dumps({"ANSIBLE_MODULE_ARGS": module_args}, cls=encoder).encode()
        code, printed = run_main(module, json_params)
        data = self._parse_returned_data({"rc": code, "stdout": printed, "stderr": ""}, PROFILE)
        remove_internal_keys(data)
        return data
