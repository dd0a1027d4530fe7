"""The collection's modules run inside the task's worker on a local connection, with the same results.

The same play runs with the modules in the worker (the default) and in module processes
(MULTICLOUD_INTERCONNECT_MODULE_PROCESS=1): check mode with its diff, a first run, a second run,
a module failure and an option refused by the argument spec must read the same, and only the
second way starts AnsiballZ processes. A task whose interpreter is another Python gets a process.
No cluster is needed: the modules are ca_files and cluster_objects on localhost.
"""

from __future__ import annotations

import os
import re
import stat
import sys

import pytest
import yaml

from site_helpers import recap, run_playbook  # pylint: disable=import-error
from test_ca_files import PLAY as CA_PLAY  # pylint: disable=import-error

# The root and intermediate of test_ca_files, then two failures and what the root step returned.
CA_TASKS = [dict(task) for task in CA_PLAY[0]["tasks"]]
CA_TASKS[0]["register"] = "root"
PLAY = [{
    "name": "Controller-side modules of the collection",
    "hosts": "localhost",
    "gather_facts": False,
    "tasks": CA_TASKS + [
        {"name": "A cluster that cannot be reached", "multicloud.interconnect.cluster_objects": {
            "cluster": "cluster09", "kubeconfig": "{{ ca_root }}-missing/kubeconfig",
            "read": [{"api_version": "v1", "kind": "Namespace"}]}, "ignore_errors": True},
        {"name": "An option the module does not have", "multicloud.interconnect.cluster_objects": {
            "cluster": "cluster09", "colour": "blue"}, "ignore_errors": True},
        {"name": "Show what the root step returned", "ansible.builtin.debug": {
            "msg": "root changed={{ root.changed }} fingerprint={{ root.fingerprint | default('none') }}"}},
    ],
}]

PROCESS = {"MULTICLOUD_INTERCONNECT_MODULE_PROCESS": "1"}
IN_WORKER = {"MULTICLOUD_INTERCONNECT_MODULE_PROCESS": None}


@pytest.fixture(name="play")
def play_file(tmp_path):
    path = tmp_path / "controller.yml"
    path.write_text(yaml.safe_dump(PLAY), encoding="utf-8")
    return path


def run(play, root, env, *args, interpreter=sys.executable):
    return run_playbook(play, "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=%s" % interpreter,
                        "-e", "ca_root=%s" % root, *args, inventories=(), env=env, timeout=300)


def module_processes(play, root, env, **kwargs):
    """The modules a run started a process for (-vvv names each AnsiballZ file it runs)."""
    result = run(play, root, env, "-vvv", **kwargs)
    return sorted(set(re.findall(r"AnsiballZ_(\w+)\.py", result.stdout + result.stderr)))


def user_view(output, root):
    """What a user reads (task names, results, messages, diffs) without the run's temporary paths and
    the fingerprints of the keys it made."""
    output = output.replace(str(root), "ROOT")
    return re.sub(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", "FINGERPRINT", output).splitlines()


def test_in_the_worker_and_in_a_process_a_user_reads_the_same_runs(play, tmp_path):
    views = {}
    for mode, env in (("worker", IN_WORKER), ("process", PROCESS)):
        root = tmp_path / mode
        runs = [run(play, root, env, "--check", "--diff"), run(play, root, env), run(play, root, env)]
        views[mode] = [user_view(r.stdout + r.stderr, root) for r in runs]
        # ca_files and cluster_objects: a process each in the process mode, none in the worker
        started = module_processes(play, root, env)
        assert started == ([] if mode == "worker" else ["ca_files", "cluster_objects"]), started
        assert [recap(r.stdout)["localhost"]["changed"] for r in runs] == [2, 2, 0]
        assert [recap(r.stdout)["localhost"]["ignored"] for r in runs] == [2, 2, 2]
        key = root / "root-key.pem"
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert views["worker"] == views["process"]
    text = "\n".join(views["worker"][1])
    assert "cluster cluster09: cannot load kubeconfig" in text
    assert "Unsupported parameters for (multicloud.interconnect.cluster_objects) module: colour" in text
    assert "root changed=True fingerprint=FINGERPRINT" in text


def test_a_task_whose_interpreter_is_another_python_gets_a_module_process(play, tmp_path):
    wrapper = tmp_path / "python-wrapper"
    wrapper.write_text("#!/bin/sh\nexec %s \"$@\"\n" % sys.executable, encoding="utf-8")
    wrapper.chmod(0o755)
    assert module_processes(play, tmp_path / "ca", IN_WORKER, interpreter=wrapper) == ["ca_files", "cluster_objects"]
