"""A real rolling kernel upgrade of a Debian VM: check, apply, check, apply; then a roll stopped
by a reboot that does not come back in time, and the re-run that finishes it.

The VM (tools/vm: debootstrap, GRUB on a BIOS disk, kernel 6.1 pinned as GRUB's saved default)
boots under qemu in the network namespace ``mci-vm``; Ansible reaches it over SSH. Its Node
object lives in the lab's cluster01 (kwok keeps it Ready), so cordon, drain, wait-Ready and
uncordon go through a real API server. The role installs the newest 6.1 cloud kernel of
bookworm-security (a later ABI than the base's, asked for by a minimum with that build) from a
mirror served inside the namespace (the VM has no other network), regenerates grub.cfg, saves
the new entry as default, reboots and checks ``uname -r``. Because the old kernel is pinned,
the VM only comes back on the new one if the role really moved the boot default.

Slow under software emulation (five boots): run it with ``make test-vm``.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
import shlex
import subprocess
import threading
import time

import pytest

from integration.site_helpers import REPO, recap

from .kernel_helpers import create_node, delete_node, flat, playbook, unschedulable, write_inventory


def _vm_tool():
    # tools/vm/vm.py by its path: the name ``vm`` is this test package's on sys.path.
    spec = importlib.util.spec_from_file_location("mci_vm_tool", REPO / "tools" / "vm" / "vm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vm = _vm_tool()

pytestmark = [pytest.mark.vm, pytest.mark.lab]
NODE = "mci-vm-node"


def ssh(state, *argv):
    return subprocess.run(
        ["ssh", "-i", state["key"], "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "ConnectTimeout=10", "root@" + state["ip"], *argv],
        capture_output=True, text=True, timeout=120, check=True).stdout.strip()


class NodeWatch(threading.Thread):
    """Records every change of the Node's spec.unschedulable while the roll runs."""

    def __init__(self, api):
        super().__init__(daemon=True)
        self.api, self.seen, self.stop = api, [], threading.Event()

    def run(self):
        while True:
            # One more reading after the stop: the playbook's last change (the uncordon) may come
            # after the previous one.
            stopping = self.stop.is_set()
            try:
                value = unschedulable(self.api, NODE)
                if not self.seen or self.seen[-1] != value:
                    self.seen.append(value)
            except Exception:  # pylint: disable=broad-except  # the API may blink; keep watching
                pass
            if stopping:
                return
            time.sleep(0.5)


def task_result(output, task):
    """``ok``, ``changed``, ... : what the run printed first under the task named ``task``."""
    match = re.search(r"^TASK \[[^\]]*%s\] \**\n(?:.*\n)*?(ok|changed|skipping|failed|fatal): \[" % re.escape(task),
                      output, re.M)
    return match.group(1) if match else None


def minimum(state):
    """The target's version and ABI (``6.1.0-56`` of ``6.1.0-56-cloud-amd64``): a build the base does not meet."""
    return state["target_release"].rsplit("-", 2)[0]


@pytest.fixture(scope="module")
def vm_node(lab, tmp_path_factory):
    cluster = lab.clusters["cluster01"]
    api = cluster.api_client()
    run_dir = tmp_path_factory.mktemp("vm")
    state = vm.up(run_dir, timeout=1500)
    create_node(api, NODE)
    inventory = write_inventory(tmp_path_factory.mktemp("inv-vm"), cluster.kubeconfig, {NODE: {
        "ansible_host": state["ip"], "ansible_user": "root", "ansible_ssh_private_key_file": state["key"],
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ansible_python_interpreter": "/usr/bin/python3"}}, {
        # The base image runs the release's 6.1 build; a minimum naming the target's build makes it the upgrade.
        "kernel_upgrade_min_version": minimum(state),
        "kernel_upgrade_debian_package": "linux-image-cloud-amd64",
        "kernel_upgrade_apt_repository": "deb [trusted=yes] %s ./" % state["mirror_url"],
        "kernel_upgrade_reboot_timeout": 1800})
    try:
        yield state, inventory, api
    finally:
        delete_node(api, NODE)
        vm.down(pathlib.Path(run_dir))


@pytest.fixture(scope="module")
def rolled(vm_node):
    state, inventory, api = vm_node
    runs = {"check1": playbook(inventory, "--check")}
    runs["kernel_after_check"] = ssh(state, "uname", "-r")
    watch = NodeWatch(api)
    watch.start()
    runs["apply1"] = playbook(inventory, "-e", "kernel_upgrade_confirm='drain and reboot'", timeout=3600)
    watch.stop.set()
    watch.join()
    runs["cordon_history"] = watch.seen
    runs["check2"] = playbook(inventory, "--check")
    runs["apply2"] = playbook(inventory, "-e", "kernel_upgrade_confirm='drain and reboot'")
    # The runs' output beside the VM's serial console, for whoever reads the result afterwards.
    for name in ("check1", "apply1", "check2", "apply2"):
        (pathlib.Path(state["run_dir"]) / ("%s.log" % name)).write_text(runs[name].stdout + runs[name].stderr,
                                                                        encoding="utf-8")
    return state, api, runs


CORDON_ANNOTATION = "kernel-upgrade.multicloud.interconnect/cordoned-for"
REBOOT_TIMEOUT = 30
LATE_SSH_UNIT = """[Unit]
Description=sshd two minutes after boot (a node that does not come back in time)
After=network.target

[Service]
Type=simple
ExecStart=/bin/sh -c 'sleep 120; systemctl start ssh.service'

[Install]
WantedBy=multi-user.target
"""


def boot_id(state):
    try:
        return ssh(state, "cat", "/proc/sys/kernel/random/boot_id")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None


def wait_for_new_boot(state, previous, timeout=600):
    """Until the VM answers SSH from a boot other than ``previous``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = boot_id(state)
        if current and current != previous:
            return current
        time.sleep(5)
    raise AssertionError("the VM did not come back from its reboot within %d s" % timeout)


def cordon_mark(api, name):
    from kubernetes import client  # pylint: disable=import-outside-toplevel
    node = client.CoreV1Api(api).read_node(name)
    return (node.metadata.annotations or {}).get(CORDON_ANNOTATION)


@pytest.fixture(scope="module")
def interrupted(vm_node, rolled):
    """The base kernel booted again (as a boot loader falling back leaves a node: the target stays
    installed), then a roll whose reboot does not come back in time (sshd starts late on that boot), then the re-runs."""
    state, inventory, api = vm_node
    runs = {}
    before = boot_id(state)
    entry = "gnulinux-advanced-{uuid}>gnulinux-{release}-advanced-{uuid}".format(
        uuid=state["root_uuid"], release=state["base_release"])
    # one command line: ssh hands the remote shell a string, not an argument vector
    ssh(state, "grub-set-default %s && systemd-run --on-active=2 systemctl reboot" % shlex.quote(entry))
    wait_for_new_boot(state, before)
    runs["kernel_before"] = ssh(state, "uname", "-r")
    if runs["kernel_before"] != state["base_release"]:
        return state, runs  # the scenario needs the old kernel running; the tests say so
    # The next boot brings sshd up only two minutes late, longer than the reboot timeout of the run
    # below: for Ansible the node does not come back in time, and then it does.
    ssh(state, "printf '%s' " + shlex.quote(LATE_SSH_UNIT) + " > /etc/systemd/system/mci-late-ssh.service && "
        "systemctl daemon-reload && systemctl enable --quiet mci-late-ssh.service && systemctl disable --quiet ssh.service")
    before = boot_id(state)
    runs["apply3"] = playbook(inventory, "-e", "kernel_upgrade_confirm='drain and reboot'",
                              "-e", "kernel_upgrade_reboot_timeout=%d" % REBOOT_TIMEOUT, timeout=1800)
    runs["after_stop"] = (unschedulable(api, NODE), cordon_mark(api, NODE))
    wait_for_new_boot(state, before)
    runs["check4"] = playbook(inventory, "--check")
    runs["after_check"] = (unschedulable(api, NODE), cordon_mark(api, NODE))
    runs["apply4"] = playbook(inventory, "-e", "kernel_upgrade_confirm='drain and reboot'")
    runs["after_resume"] = (unschedulable(api, NODE), cordon_mark(api, NODE))
    runs["apply5"] = playbook(inventory, "-e", "kernel_upgrade_confirm='drain and reboot'")
    for name in ("apply3", "check4", "apply4", "apply5"):
        (pathlib.Path(state["run_dir"]) / ("%s.log" % name)).write_text(runs[name].stdout + runs[name].stderr,
                                                                        encoding="utf-8")
    return state, runs


def test_check_mode_reports_the_upgrade_and_changes_nothing(rolled):
    state, _api, runs = rolled
    out = runs["check1"].stdout + runs["check1"].stderr
    assert runs["check1"].returncode == 0, out
    assert ("%s: current %s, minimum %s, target newest linux-image-cloud-amd64 -> upgrade"
            % (NODE, state["base_release"], minimum(state)) in flat(out))
    assert recap(out)[NODE]["changed"] == 0
    assert runs["kernel_after_check"] == state["base_release"]


def test_apply_drains_reboots_into_the_target_and_uncordons(rolled):
    state, api, runs = rolled
    out = runs["apply1"].stdout + runs["apply1"].stderr
    assert runs["apply1"].returncode == 0, out[-6000:]
    assert "%s runs %s" % (NODE, state["target_release"]) in flat(out)
    # the new kernel's entries: the boot menu changed
    assert task_result(runs["apply1"].stdout, "Write grub.cfg") == "changed"
    assert ssh(state, "uname", "-r") == state["target_release"]
    saved = ssh(state, "grub-editenv", "list")
    assert "gnulinux-%s-advanced" % state["target_release"] in saved
    # cordoned during the roll, schedulable again at the end
    assert True in runs["cordon_history"], runs["cordon_history"]
    assert runs["cordon_history"][-1] is False
    assert not unschedulable(api, NODE)


def test_second_check_and_apply_change_nothing(rolled):
    state, _api, runs = rolled
    for name in ("check2", "apply2"):
        out = runs[name].stdout + runs[name].stderr
        assert runs[name].returncode == 0, out
        assert "current %s, minimum %s, target %s -> skip" % (
            state["target_release"], minimum(state), state["target_release"]) in flat(out)
        assert all(host["changed"] == 0 for host in recap(out).values()), out


def test_a_reboot_that_does_not_come_back_in_time_stops_the_roll_and_leaves_the_node_cordoned(interrupted):
    state, runs = interrupted
    assert runs["kernel_before"] == state["base_release"]
    out = flat(runs["apply3"].stdout + runs["apply3"].stderr)
    assert runs["apply3"].returncode != 0, out[-6000:]
    # the target is installed already: the plan is a reboot, not a second install
    assert "current %s, minimum %s, target %s -> reboot" % (
        state["base_release"], minimum(state), state["target_release"]) in out
    assert ("kernel upgrade stopped at node %s (host %s, cluster cluster01) in step 'Check that the node came back "
            "after the reboot': node %s did not come back within %d s after rebooting into %s"
            % (NODE, NODE, NODE, REBOOT_TIMEOUT, state["target_release"])) in out, out[-6000:]
    assert "The Node is left cordoned (annotation %s)" % CORDON_ANNOTATION in out
    assert "Finalization of task args" not in out
    # both kernels were in the boot menu already: regenerated, equal, not rewritten
    assert task_result(runs["apply3"].stdout, "Write grub.cfg") == "ok"
    assert runs["after_stop"] == (True, state["target_release"])


def test_the_next_run_verifies_the_kernel_and_uncordons_the_node(interrupted):
    state, runs = interrupted
    assert runs["kernel_before"] == state["base_release"]
    check = flat(runs["check4"].stdout + runs["check4"].stderr)
    assert runs["check4"].returncode == 0, check[-6000:]
    assert "current %s, minimum %s, target %s -> resume" % (
        state["target_release"], minimum(state), state["target_release"]) in check
    assert all(host["changed"] == 0 for host in recap(check).values()), check
    assert runs["after_check"] == (True, state["target_release"])

    out = flat(runs["apply4"].stdout + runs["apply4"].stderr)
    assert runs["apply4"].returncode == 0, out[-6000:]
    assert "1 node(s) left cordoned by an interrupted upgrade would be verified and uncordoned: %s" % NODE in out
    assert "node %s runs %s" % (NODE, state["target_release"]) in out
    assert recap(runs["apply4"].stdout)[NODE]["changed"] > 0
    assert runs["after_resume"] == (False, None)
    assert ssh(state, "uname", "-r") == state["target_release"]

    last = runs["apply5"].stdout + runs["apply5"].stderr
    assert runs["apply5"].returncode == 0, last
    assert "-> skip" in flat(last)
    assert all(host["changed"] == 0 for host in recap(last).values()), last
