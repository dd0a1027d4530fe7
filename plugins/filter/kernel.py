# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the kernel_upgrade role, over the pure decisions in module_utils/_kernel.py."""

from __future__ import annotations

import dataclasses

from ansible.errors import AnsibleFilterError

from ansible_collections.multicloud.interconnect.plugins.module_utils._kernel import (
    CORDON_ANNOTATION,
    KernelError,
    Platform,
    cluster_of,
    compare_releases,
    cordoned_for,
    debian_package_release,
    debian_source,
    decide,
    elrepo_source,
    grub_cfg_mode,
    grub_entry,
    grub_plan,
    is_control_plane,
    meets_minimum,
    minimum_for,
    newest_release,
    plan_batches,
    platform_of,
    report_line,
    reboot_problem,
    running_problem,
    stop_message,
)


def kernel_node_plan(facts, node, options, installed=None, uefi=False):
    """Everything the role needs to act on one node, from its facts and the role's inputs.

    ``node``: ``{name, cluster, cni, labels, control_plane, cordoned_for}`` (labels of its Node
    object, control_plane the inventory override or None, cordoned_for the target of an
    interrupted roll that left the Node cordoned, see ``_kernel.cordoned_for``);
    ``facts``: ``ansible_facts`` (distribution, distribution_major_version, os_family,
    distribution_release, kernel); ``options``: the role inputs without their prefix
    (min_version, flavor, version, elrepo_mirror_url, force, debian_package, debian_release,
    apt_repository); ``installed``: what the chosen package installed so far (rpm -q lines or the
    Debian metapackage's Depends).
    """
    options = dict(options or {})
    name, cni = node["name"], node.get("cni") or "cilium"
    platform = platform_of(facts.get("distribution"), facts.get("distribution_major_version"),
                           facts.get("os_family"), facts.get("distribution_release"))
    minimum = minimum_for(cni, options.get("min_version"))
    if platform.family == "el":
        source = elrepo_source(platform.major, options.get("flavor") or "lt", options.get("elrepo_mirror_url"),
                               options.get("version"), minimum)
        installed_target = newest_release(str(installed or "").splitlines())
    else:
        source = debian_source(platform, options.get("debian_package"), options.get("debian_release"),
                               options.get("apt_repository"))
        version = options.get("version")
        source["package_spec"] = "%s=%s" % (source["package"], version) if version else source["package"]
        installed_target = debian_package_release(installed)
    running = str(facts.get("kernel"))
    decision = decide(name, running, minimum, cni, installed_target, bool(options.get("force")),
                      node.get("cordoned_for") or None)
    target = installed_target if decision["action"] == "reboot" else (
        "newest %s%s" % (source.get("package_spec") or source["package"],
                         " from " + source["default_release"] if source.get("default_release") else ""))
    if decision["action"] in ("skip", "resume"):
        target = running
    decision.update({
        "cluster": node["cluster"],
        "cni": cni,
        "worker_batch": str(options.get("worker_batch") or "20%"),
        "control_plane": is_control_plane(node.get("labels"), node.get("control_plane")),
        "platform": dataclasses.asdict(platform),
        "source": source,
        "target": target,
        "installed_target": installed_target,
        "uefi": bool(uefi),
        "cordon_annotation": CORDON_ANNOTATION,
        "report": report_line(decision, target),
    })
    return decision


def kernel_installed_release(installed, family):
    """The kernel release the chosen package installed (``None`` when it installed none)."""
    if family == "el":
        return newest_release(str(installed or "").splitlines())
    return debian_package_release(installed)


def kernel_meets_minimum(release, plan):
    """Whether ``release`` satisfies the minimum the node's plan enforces."""
    return meets_minimum(release, plan.get("minimum"), plan.get("cni"))


def kernel_grub_plan(plan, release, efi_vendor=None):
    return grub_plan(Platform(**plan["platform"]), plan.get("uefi", False), release, efi_vendor or None)


def kernel_grub_entry(grub_cfg, release, style="id"):
    return grub_entry(grub_cfg, release, style)


def kernel_grub_saved_entry(editenv_output):
    """``saved_entry`` from ``grub-editenv list`` (empty string when unset)."""
    for line in str(editenv_output or "").splitlines():
        if line.startswith("saved_entry="):
            return line.split("=", 1)[1]
    return ""


def kernel_batches(hostvars, names):
    """Batches for the roll from the nodes' plans (``__kernel_upgrade_plan`` of each host).

    Each cluster uses the worker share its nodes were planned with (``worker_batch``).
    """
    per_cluster = {}
    for name in names or []:
        plan = hostvars[name].get("__kernel_upgrade_plan")
        if not plan:
            continue
        per_cluster.setdefault(plan["cluster"], []).append({
            "name": name, "cluster": plan["cluster"], "control_plane": plan["control_plane"],
            "action": plan["action"], "worker_batch": plan.get("worker_batch") or "20%"})
    result = {"batches": [], "order": [], "serial": []}
    for cluster in sorted(per_cluster):
        nodes = per_cluster[cluster]
        planned = plan_batches(nodes, nodes[0]["worker_batch"])
        for key in result:
            result[key].extend(planned[key])
    actions = {n["name"]: n["action"] for nodes in per_cluster.values() for n in nodes}
    rebooted = [n for n in result["order"] if actions[n] != "resume"]
    resumed = [n for n in result["order"] if actions[n] == "resume"]
    parts = []
    if rebooted:
        parts.append("%d node(s) would be drained and rebooted: %s" % (len(rebooted), ", ".join(rebooted)))
    if resumed:
        parts.append("%d node(s) left cordoned by an interrupted upgrade would be verified and uncordoned: %s"
                     % (len(resumed), ", ".join(resumed)))
    result["summary"] = "; ".join(parts) or "nothing to upgrade"
    return result


def _wrap(function):
    def call(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except KernelError as err:
            raise AnsibleFilterError(str(err)) from err
    call.__name__ = function.__name__
    call.__doc__ = function.__doc__
    return call


class FilterModule:
    def filters(self):
        return {name: _wrap(function) for name, function in {
            "kernel_node_plan": kernel_node_plan,
            "kernel_installed_release": kernel_installed_release,
            "kernel_grub_plan": kernel_grub_plan,
            "kernel_grub_entry": kernel_grub_entry,
            "kernel_grub_cfg_mode": grub_cfg_mode,
            "kernel_grub_saved_entry": kernel_grub_saved_entry,
            "kernel_batches": kernel_batches,
            "kernel_cluster_of": cluster_of,
            "kernel_is_control_plane": is_control_plane,
            "kernel_compare": compare_releases,
            "kernel_meets_minimum": kernel_meets_minimum,
            "kernel_running_problem": running_problem,
            "kernel_reboot_problem": reboot_problem,
            "kernel_stop_message": stop_message,
            "kernel_cordoned_for": cordoned_for,
        }.items()}
