"""The kernel_upgrade role's filters: the per-node plan and the batches built from hostvars."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.multicloud.interconnect.plugins.filter.kernel import FilterModule

F = FilterModule().filters()

ROCKY9 = {"distribution": "Rocky", "distribution_major_version": "9", "os_family": "RedHat",
          "distribution_release": "Blue Onyx", "kernel": "5.14.0-427.13.1.el9_4.x86_64"}
CENTOS7 = {"distribution": "CentOS", "distribution_major_version": "7", "os_family": "RedHat",
           "distribution_release": "Core", "kernel": "3.10.0-1160.el7.x86_64"}
BOOKWORM = {"distribution": "Debian", "distribution_major_version": "12", "os_family": "Debian",
            "distribution_release": "bookworm", "kernel": "6.1.0-35-cloud-amd64"}


def node(**extra):
    base = {"name": "n1", "cluster": "cluster01", "cni": "cilium", "labels": {}, "control_plane": None}
    base.update(extra)
    return base


def test_plan_rocky9_meets_cilium_minimum_and_is_skipped():
    plan = F["kernel_node_plan"](ROCKY9, node(), {"flavor": "ml"})
    assert plan["action"] == "skip"
    assert plan["minimum"] == "5.10"
    assert plan["source"]["key_url"].endswith("RPM-GPG-KEY-v2-elrepo.org")
    assert plan["report"] == ("n1: current 5.14.0-427.13.1.el9_4.x86_64, minimum 5.10, target "
                              "5.14.0-427.13.1.el9_4.x86_64 -> skip (running kernel 5.14.0-427.13.1.el9_4.x86_64 "
                              "meets the minimum 5.10)")


def test_plan_rocky9_below_a_raised_minimum_upgrades_from_elrepo():
    plan = F["kernel_node_plan"](ROCKY9, node(labels={"node-role.kubernetes.io/control-plane": ""}),
                                 {"flavor": "ml", "min_version": "6.6", "worker_batch": "50%"}, "package kernel-ml is not installed\n")
    assert (plan["action"], plan["target"], plan["control_plane"]) == ("upgrade", "newest kernel-ml", True)
    assert plan["worker_batch"] == "50%"


def test_plan_installed_but_not_running_is_a_reboot():
    plan = F["kernel_node_plan"](ROCKY9, node(), {"flavor": "ml", "min_version": "6.6"}, "6.9.7-1.el9.elrepo.x86_64\n")
    assert (plan["action"], plan["target"]) == ("reboot", "6.9.7-1.el9.elrepo.x86_64")


def test_plan_centos7_without_mirror_is_refused_before_anything():
    with pytest.raises(AnsibleFilterError, match="EL7 needs kernel_upgrade_elrepo_mirror_url"):
        F["kernel_node_plan"](CENTOS7, node(), {"flavor": "ml"})


def test_plan_debian_with_mirror_installs_the_metapackage_from_it():
    options = {"min_version": "6.6", "debian_package": "linux-image-cloud-amd64",
               "apt_repository": "deb [trusted=yes] http://10.0.2.2:8080/ ./"}
    depends = "linux-image-6.1.0-35-cloud-amd64 (= 6.1.137-1)"
    plan = F["kernel_node_plan"](BOOKWORM, node(cni="kosmos"), options, depends)
    assert plan["action"] == "upgrade"
    assert plan["source"]["package_spec"] == "linux-image-cloud-amd64"
    assert plan["source"]["default_release"] is None
    assert plan["installed_target"] == "6.1.0-35-cloud-amd64"


def test_plan_kosmos_without_minimum_skips():
    assert F["kernel_node_plan"](BOOKWORM, node(cni="kosmos"), {})["action"] == "skip"


def test_grub_plan_and_saved_entry():
    plan = F["kernel_node_plan"](BOOKWORM, node(), {})
    grub = F["kernel_grub_plan"](plan, "6.12.95+bpo-cloud-amd64")
    assert grub["generate"] == ["grub-mkconfig"] and grub["editenv"] == ["grub-editenv", "list"]
    assert F["kernel_grub_saved_entry"]("saved_entry=a>b\nnext_entry=\n") == "a>b"
    assert F["kernel_grub_saved_entry"]("") == ""


def test_meets_minimum_uses_the_plan():
    plan = {"minimum": "5.10", "cni": "cilium"}
    assert F["kernel_meets_minimum"]("4.18.0-553.el8_10.x86_64", plan)
    assert not F["kernel_meets_minimum"]("4.18.0-553.el8_10.x86_64", {"minimum": "5.10", "cni": "kosmos"})


def test_batches_from_hostvars_per_cluster_share():
    def plan(cluster, cp, action, share):
        return {"__kernel_upgrade_plan": {"cluster": cluster, "control_plane": cp, "action": action,
                                          "worker_batch": share}}
    hostvars = {
        "c1-cp": plan("cluster01", True, "upgrade", "50%"),
        "c1-w1": plan("cluster01", False, "upgrade", "50%"),
        "c1-w2": plan("cluster01", False, "reboot", "50%"),
        "c1-w3": plan("cluster01", False, "upgrade", "50%"),
        "c1-w4": plan("cluster01", False, "skip", "50%"),
        "c2-w1": plan("cluster02", False, "upgrade", "1"),
        "c2-w2": plan("cluster02", False, "upgrade", "1"),
        "unplanned": {},
    }
    result = F["kernel_batches"](hostvars, sorted(hostvars))
    assert result["batches"] == [["c1-cp"], ["c1-w1", "c1-w2"], ["c1-w3"], ["c2-w1"], ["c2-w2"]]
    assert result["serial"] == [1, 2, 1, 1, 1]
    assert result["summary"] == "6 node(s) would be drained and rebooted: c1-cp, c1-w1, c1-w2, c1-w3, c2-w1, c2-w2"


def test_batches_summary_tells_resumed_nodes_from_rebooted_ones():
    hostvars = {
        "a": {"__kernel_upgrade_plan": {"cluster": "c1", "control_plane": False, "action": "resume"}},
        "b": {"__kernel_upgrade_plan": {"cluster": "c1", "control_plane": False, "action": "upgrade"}},
        "c": {"__kernel_upgrade_plan": {"cluster": "c1", "control_plane": False, "action": "skip"}},
    }
    result = F["kernel_batches"](hostvars, sorted(hostvars))
    assert result["summary"] == ("1 node(s) would be drained and rebooted: b; 1 node(s) left cordoned by an "
                                 "interrupted upgrade would be verified and uncordoned: a")
    assert F["kernel_batches"]({"c": hostvars["c"]}, ["c"])["summary"] == "nothing to upgrade"


def test_plan_of_a_node_left_cordoned_by_the_roll_is_a_resume_with_its_running_kernel_as_target():
    done = dict(BOOKWORM, kernel="6.1.0-57-cloud-amd64")
    cordoned = {"metadata": {"annotations": {"kernel-upgrade.multicloud.interconnect/cordoned-for": "6.1.0-57-cloud-amd64"}},
                "spec": {"unschedulable": True}}
    plan = F["kernel_node_plan"](done, node(cordoned_for=F["kernel_cordoned_for"](cordoned)), {"min_version": "6.1.0-57"},
                                 "linux-image-6.1.0-57-cloud-amd64")
    assert (plan["action"], plan["target"]) == ("resume", "6.1.0-57-cloud-amd64")
    assert plan["cordon_annotation"] == "kernel-upgrade.multicloud.interconnect/cordoned-for"
    assert F["kernel_node_plan"](done, node(), {"min_version": "6.1.0-57"})["action"] == "skip"


def test_cluster_of_filter_error_is_an_ansible_error():
    with pytest.raises(AnsibleFilterError, match="exactly one"):
        F["kernel_cluster_of"]("n1", [], ["cluster01"], "")


def test_a_node_back_on_another_kernel_fails_the_roll_step_with_both_kernels():
    problem = F["kernel_running_problem"]
    assert problem("node-a", "6.1.0-57-cloud-amd64", "6.1.0-57-cloud-amd64") == ""
    assert problem("node-a", "6.1.0-50-cloud-amd64", "6.1.0-57-cloud-amd64").startswith(
        "node node-a runs kernel 6.1.0-50-cloud-amd64 after the reboot, not the installed target 6.1.0-57-cloud-amd64: "
        "the boot default did not take")
