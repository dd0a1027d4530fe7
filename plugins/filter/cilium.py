# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the cilium role: thin wrappers over plugins/module_utils/_cilium.py.

Who the clusters are (name, ID, group, technique) comes from the one model of the inventory
(``_topology.topology_from_hostvars``); what each cluster gathered comes from its ``__cilium_*``
facts. The role's tasks never shape data in Jinja.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display

from ansible_collections.multicloud.interconnect.plugins.module_utils import _ca_rotation, _cilium
from ansible_collections.multicloud.interconnect.plugins.module_utils._problems import problem, refusal, render
from ansible_collections.multicloud.interconnect.plugins.module_utils._topology import topology_from_hostvars

_display = Display()


def _hv(hostvars, name):
    return hostvars[name]


def _members(hostvars, hosts):
    return [_hv(hostvars, h)["__cilium_member"] for h in hosts or [] if "__cilium_member" in _hv(hostvars, h)]


def cilium_kernel_findings(nodes, minimum):
    """``{too_old: [{node, kernel}], unknown: [...]}`` for the Node objects of one cluster."""
    try:
        return _cilium.kernel_findings(nodes, minimum)
    except _cilium.CiliumError as err:
        raise AnsibleFilterError(str(err)) from err


def cilium_kernel_problems(hostvars, hosts, minimum, allow_unknown=False):
    """Rendered problems (lines) for the clusters of ``hosts`` whose nodes cannot run Cilium (``__cilium_kernel`` facts)."""
    findings = {h: _hv(hostvars, h)["__cilium_kernel"] for h in hosts or [] if "__cilium_kernel" in _hv(hostvars, h)}
    return render(_cilium.kernel_problems(findings, minimum, bool(allow_unknown)))


def cilium_member(name, hostvars, settings, nodes, service, cluster_id=None):
    """What peers need from the cluster of inventory host ``name``: name, ID, group, service type, nodePort, endpoint.

    ``cluster_id``: the ID ``cilium_cluster_ids`` chose (the inventory's, or kept, or allocated).
    """
    return _cilium.member(topology_from_hostvars(hostvars, [name]).clusters[name], settings, nodes, service, cluster_id)


def cilium_running_id(config_maps):
    """The ``cluster-id`` a cluster's ``cilium-config`` holds (the read of it: a list of 0 or 1 objects), or None."""
    for config in config_maps or []:
        value = str(((config or {}).get("data") or {}).get("cluster-id") or "").strip()
        return int(value) if value.isdigit() and int(value) > 0 else None
    return None


def cilium_cluster_ids(hostvars, hosts, inventory_hosts, max_id):
    """``{ids: {host: {id, source}}, report: lines, problems: rendered refusal or ""}`` for the Cilium
    clusters of ``hosts``: the inventory's cluster_id, else the ID the cluster runs with
    (``__cilium_running_id``, gathered), else the lowest free ID; every cluster_id of the inventory
    (``inventory_hosts``) is taken, whatever its technique."""
    topology = topology_from_hostvars(hostvars, inventory_hosts or [])
    playing = set(hosts or [])
    entries = []
    for name, cluster in topology.clusters.items():
        entries.append({"inventory_name": name, "name": cluster.name, "group": cluster.network_group,
                        "cilium": name in playing and cluster.cni == "cilium", "given": cluster.id_int(),
                        "running": _hv(hostvars, name).get("__cilium_running_id") if name in playing else None})
    ids, problems = _cilium.allocate_ids(entries, int(max_id or 255))
    names = {name: cluster.name for name, cluster in topology.clusters.items()}
    return {"ids": ids, "report": _cilium.id_report(ids, names),
            "problems": refusal("Cilium cluster IDs", problems) if problems else ""}


def cilium_mesh_problems(hostvars, hosts, inventory_hosts):
    """Rendered problems (lines) that stop the run before any change: ports, types, group members left out."""
    groups = topology_from_hostvars(hostvars, inventory_hosts or []).members(cni="cilium")
    expected = {group: [c.inventory_name for c in clusters] for group, clusters in groups.items()}
    return render(_cilium.mesh_problems(_members(hostvars, hosts), expected))


def cilium_ca_plan(hostvars, hosts, group, source_cluster=None, provided_cert=None, provided_key=None):
    """Where a network group's CA comes from: provided, adopted from a cluster, or the controller's files."""
    members = topology_from_hostvars(hostvars, hosts or []).members().get(group) or []
    secrets = {}
    records = {}
    for cluster in members:
        hv = _hv(hostvars, cluster.inventory_name)
        if "__cilium_ca_secret" in hv:
            secrets[cluster.inventory_name] = hv["__cilium_ca_secret"]
        records[cluster.inventory_name] = _ca_rotation.read_record(hv.get("__cilium_ca_record"))
    under_way = sorted({r["rotation"] for r in records.values() if r and not r["finished"]})
    if under_way:
        # ca_rotate.yml owns the CA until the rotation ends: every cluster keeps the stage it reached.
        newcomers = sorted(name for name in records if not (secrets.get(name) or {}).get("ca.crt"))
        if newcomers:
            raise AnsibleFilterError(refusal("Cilium CA", [problem(
                "CILIUM_CA_ROTATION_UNDER_WAY",
                "network group %s: CA rotation %s is under way, and %s %s no Cilium CA yet; a cluster joins the group "
                "once the rotation ends." % (group, ", ".join(under_way), ", ".join(newcomers),
                                             "has" if len(newcomers) == 1 else "have"),
                "finish it with playbooks/ca_rotate.yml -e cilium_ca_rotation=%s, then run again" % under_way[0],
                newcomers, group, "cilium_ca_rotation")]))
        return {"source": "rotation", "rotation": under_way[0]}
    try:
        return _cilium.choose_ca(group, secrets, source_cluster, {"cert": provided_cert, "key": provided_key})
    except _cilium.CiliumError as err:
        raise AnsibleFilterError(str(err)) from err


def cilium_ca_kept(ca_secret, release_values, record):
    """The CA values a cluster keeps while a rotation is under way (its issuer, bundle and stage)."""
    return _ca_rotation.kept_ca(ca_secret or {}, _ca_rotation.release_trust(release_values), record)


def cilium_ca_file_groups(hostvars, hosts):
    """Network groups whose CA lives in the controller's files (read, or generated once)."""
    topology = topology_from_hostvars(hostvars, hosts or [])
    return sorted({c.network_group for c in topology.clusters.values()
                   if (_hv(hostvars, c.inventory_name).get("__cilium_ca_plan") or {}).get("source") == "files"})


def cilium_values(member, hostvars, hosts, settings, ca, extra, chart_version):
    """Full Helm values of one cluster; warns once per conflicting key of ``cilium_extra_values``."""
    try:
        result = _cilium.render(member, _members(hostvars, hosts), settings, ca, extra, chart_version)
    except _cilium.CiliumError as err:
        raise AnsibleFilterError(str(err)) from err
    for key in result["conflicts"]:
        _display.warning("cluster %s: cilium_extra_values sets %s, which the cilium role owns; the role's value is used"
                         % (member["name"], key))
    return result


def cilium_mask(before, after):
    """``{before, after}`` with the CA key hidden, for a diff that never shows it."""
    masked_before, masked_after = _cilium.mask_values(before, after)
    return {"before": masked_before, "after": masked_after}


def cilium_mesh_spec(hostvars, hosts):
    """The ``clusters`` option of cilium_mesh_info: expected identity and peers, and how to reach each cluster."""
    spec = {}
    topology = topology_from_hostvars(hostvars, hosts or [])
    for name, cluster in topology.clusters.items():
        if "__cilium_member" not in _hv(hostvars, name):
            continue
        # the ID the member was planned with: the inventory's, or the one cilium_cluster_ids chose
        # the peers the status report expects too: every other cluster of the group
        spec[name] = {"name": cluster.name, "id": _hv(hostvars, name)["__cilium_member"]["id"],
                      "group": cluster.network_group,
                      "peers": topology.peers(name),
                      "kubeconfig": cluster.kubeconfig, "context": cluster.context}
    return spec


def cilium_chart_refusal(chart_ref, found_version, wanted_version):
    """The refusal of a chart directory of another version, or an empty string."""
    problems = _cilium.chart_problems(chart_ref, found_version, wanted_version)
    return refusal("Cilium chart", problems) if problems else ""


def cilium_chart_is_local(chart_ref):
    """True when the chart reference is a path on the controller (not a repository chart nor oci://)."""
    text = str(chart_ref or "")
    return text.startswith(("/", "./", "../", "~"))


class FilterModule:
    def filters(self):
        return {
            "cilium_kernel_findings": cilium_kernel_findings,
            "cilium_chart_refusal": cilium_chart_refusal,
            "cilium_kernel_problems": cilium_kernel_problems,
            "cilium_member": cilium_member,
            "cilium_running_id": cilium_running_id,
            "cilium_cluster_ids": cilium_cluster_ids,
            "cilium_mesh_problems": cilium_mesh_problems,
            "cilium_ca_plan": cilium_ca_plan,
            "cilium_ca_file_groups": cilium_ca_file_groups,
            "cilium_ca_kept": cilium_ca_kept,
            "cilium_values": cilium_values,
            "cilium_mask": cilium_mask,
            "cilium_mesh_spec": cilium_mesh_spec,
            "cilium_chart_is_local": cilium_chart_is_local,
        }
