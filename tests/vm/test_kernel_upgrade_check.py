"""playbooks/kernel_upgrade.yml in check mode against this machine as the node (real facts, real API).

Runs on the lab: the Node object lives in cluster01. Nothing is installed or rebooted here;
check mode only plans, so this is safe on the machine running the tests.
"""

from __future__ import annotations

import platform
import sys

import pytest

from integration.site_helpers import recap

from .kernel_helpers import create_node, delete_node, flat, playbook, unschedulable, write_inventory

pytestmark = pytest.mark.lab
NODE = "mci-kernel-local"


@pytest.fixture(scope="module")
def local_node(lab, tmp_path_factory):
    cluster = lab.clusters["cluster01"]
    api = cluster.api_client()
    create_node(api, NODE)
    inventory = write_inventory(tmp_path_factory.mktemp("inv-local"), cluster.kubeconfig, {
        NODE: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}})
    yield inventory, api
    delete_node(api, NODE)


def test_check_mode_reports_skip_for_a_kernel_that_meets_cilium(local_node):
    inventory, api = local_node
    run = playbook(inventory, "--check")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    text = flat(out)
    running = platform.release()
    assert "%s: current %s, minimum 5.10, target %s -> skip" % (NODE, running, running) in text
    assert "nothing to upgrade" in out
    assert recap(out)[NODE]["changed"] == 0
    assert not unschedulable(api, NODE)


def test_check_mode_reports_the_upgrade_and_changes_nothing(local_node):
    inventory, api = local_node
    run = playbook(inventory, "--check", "-e", "kernel_upgrade_min_version=99.0")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    text = flat(out)
    running = platform.release()
    # This machine is Debian: the plan names the backports kernel it would install.
    assert ("%s: current %s, minimum 99.0, target newest linux-image-amd64 from bookworm-backports -> upgrade"
            % (NODE, running)) in text
    assert "1 node(s) would be drained and rebooted: %s;" % NODE in text  # the one batch
    assert recap(out)[NODE]["changed"] == 0
    assert not unschedulable(api, NODE)


def test_unknown_node_is_refused_before_any_change(local_node):
    inventory, _api = local_node
    run = playbook(inventory, "-e", "kernel_upgrade_node_name=no-such-node")
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "Node no-such-node (host %s) is not in cluster cluster01" % NODE in flat(out)
    assert "Roll the kernel upgrade" not in out


def test_a_real_roll_needs_the_confirmation(local_node):
    inventory, api = local_node
    run = playbook(inventory, "-e", "kernel_upgrade_min_version=99.0")
    out = flat(run.stdout + run.stderr)
    assert run.returncode != 0
    assert "1 node(s) would be drained and rebooted: %s" % NODE in out
    assert "kernel_upgrade_confirm" in out and "nothing was changed" in out
    assert not unschedulable(api, NODE)
