# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cilium ClusterMesh planning: Helm values owned by the inventory, peers, kernel and CA checks.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

Pure and stdlib-only. The role gathers what the clusters show (Nodes, the clustermesh-apiserver
Service, the ``cilium-ca`` Secret, the Helm release) and these functions turn it into the full
Helm values of every cluster, peers included, so a later ``helm upgrade`` (which resets values)
cannot lose a connection, and removing a cluster from a group disconnects it everywhere.
"""

from __future__ import annotations

import base64
import binascii
import re
import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils import _kernel
from ansible_collections.multicloud.interconnect.plugins.module_utils._ca_rotation import trust_mismatches, values as rotation_values
from ansible_collections.multicloud.interconnect.plugins.module_utils._cidr import CidrError, covering_network, parse_cidr
from ansible_collections.multicloud.interconnect.plugins.module_utils._data import copied
from ansible_collections.multicloud.interconnect.plugins.module_utils._pem import bundle_fingerprints, pem_fingerprint
from ansible_collections.multicloud.interconnect.plugins.module_utils._problems import Problem, problem, refusal
from ansible_collections.multicloud.interconnect.plugins.module_utils._runtime import compare_names

# clustermesh.config.clusters is a map {name: {...}} from chart 1.19.0 on (the chart's
# "clustermesh-clusters" helper accepts both); older charts only read a list of {name, ...}.
MAP_FORMAT_SINCE = (1, 19, 0)
SERVICE_TYPES = ("NodePort", "LoadBalancer")
NODE_PORT_RANGE = (30000, 32767)
# cilium_clustermesh_node_port_base: without a pinned port, a cluster's is base + cluster_id.
NODE_PORT_BASE = 32000
# Cilium's datapath modes; every cluster of a mesh must use the same one (Cilium's ClusterMesh
# requirements), and in native mode the native routing CIDR must span every Pod range of the mesh.
ROUTING_MODES = ("tunnel", "native")
# A derived native routing CIDR wider than this would also leave traffic to addresses outside the
# mesh (the Internet, other networks) un-masqueraded; the user then lists ranges or uses ip-masq-agent.
WIDEST_DERIVED_PREFIX = {4: 8, 6: 32}
MASK = "<hidden>"
MASK_CHANGED = "<hidden, changed>"
SECRET_PATHS = (("tls", "ca", "key"),)
CERT_PATH = ("tls", "ca", "cert")
BUNDLE_PATH = ("tls", "caBundle", "content")

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


class CiliumError(ValueError):
    """Bad input or an inconsistent mesh; the message names the clusters, the field and the fix."""


def parse_version(text: t.Any) -> t.Optional[t.Tuple[int, int, int]]:
    """``(major, minor, patch)`` from ``1.18.7``, ``v1.19.0-rc.1`` or a kernel ``5.10.0-28-amd64``."""
    match = _VERSION.match(str(text or "").strip())
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def clusters_format(chart_version: t.Any) -> str:
    """``map`` or ``list``: the shape of ``clustermesh.config.clusters`` the chart reads."""
    parsed = parse_version(chart_version)
    if parsed is None:
        raise CiliumError("cilium_chart_version %r is not a version like 1.18.7; fix: set cilium_chart_version "
                          "to the chart version you install" % (chart_version,))
    return "map" if parsed >= MAP_FORMAT_SINCE else "list"


# ---- kernel ------------------------------------------------------------------------------------
def kernel_floor(minimum: t.Any) -> str:
    """The kernel the chosen Cilium needs: ``cilium_kernel_min_version``, else the one floor table
    that the kernel_upgrade role uses too (``_kernel.CNI_MINIMUM``), so the two cannot disagree."""
    try:
        return t.cast(str, _kernel.minimum_for("cilium", minimum))
    except _kernel.KernelError:
        raise CiliumError("cilium_kernel_min_version %r is not a version like 5.10; fix: set a kernel version, "
                          "or leave it empty for Cilium's documented minimum (%s)"
                          % (minimum, _kernel.CNI_MINIMUM["cilium"])) from None


def kernel_findings(nodes: t.Iterable[t.Mapping[str, t.Any]], minimum: t.Any) -> t.Dict[str, t.List[t.Dict[str, str]]]:
    """Nodes whose ``status.nodeInfo.kernelVersion`` is older than the floor, or not a version.

    The comparison is the kernel_upgrade role's (``_kernel.meets_minimum``): RHEL 8.10's 4.18
    passes Cilium's 5.10 floor in both places.
    """
    floor = kernel_floor(minimum)
    too_old: t.List[t.Dict[str, str]] = []
    unknown: t.List[t.Dict[str, str]] = []
    for node in nodes or []:
        name = (node.get("metadata") or {}).get("name", "?")
        kernel = str(((node.get("status") or {}).get("nodeInfo") or {}).get("kernelVersion") or "")
        try:
            fits = _kernel.meets_minimum(kernel, floor, "cilium")
        except _kernel.KernelError:
            unknown.append({"node": name, "kernel": kernel or "(empty)"})
            continue
        if not fits:
            too_old.append({"node": name, "kernel": kernel})
    return {"too_old": sorted(too_old, key=lambda n: n["node"]), "unknown": sorted(unknown, key=lambda n: n["node"])}


def kernel_problems(by_cluster: t.Mapping[str, t.Mapping[str, t.List[t.Mapping[str, str]]]], minimum: t.Any,
                    allow_unknown: bool) -> t.List[Problem]:
    """One problem per cluster with nodes that cannot run the chosen Cilium, naming the nodes."""
    minimum = kernel_floor(minimum)
    problems = []
    for cluster in sorted(by_cluster):
        findings = by_cluster[cluster] or {}
        old = findings.get("too_old") or []
        if old:
            problems.append(problem(
                "CILIUM_KERNEL_TOO_OLD", "cluster %s: kernel older than %s on %s."
                % (cluster, minimum, ", ".join("%s (%s)" % (n["node"], n["kernel"]) for n in old)),
                "upgrade these nodes (role multicloud.interconnect.kernel_upgrade) or choose a Cilium whose minimum "
                "they meet", [cluster], field="cilium_kernel_min_version"))
        unknown = findings.get("unknown") or []
        if unknown and not allow_unknown:
            problems.append(problem(
                "CILIUM_KERNEL_UNKNOWN", "cluster %s: kernel version unreadable on %s."
                % (cluster, ", ".join("%s (%s)" % (n["node"], n["kernel"]) for n in unknown)),
                "check the nodes, or set cilium_kernel_allow_unknown: true when the nodes are simulated", [cluster],
                field="cilium_kernel_allow_unknown"))
    return problems


# ---- endpoints ---------------------------------------------------------------------------------
def node_addresses(nodes: t.Iterable[t.Mapping[str, t.Any]]) -> t.List[str]:
    """One address per node, ExternalIP before InternalIP (as cilium-cli prefers), sorted."""
    result = []
    for node in nodes or []:
        addresses = (node.get("status") or {}).get("addresses") or []
        by_type: t.Dict[str, str] = {}
        for entry in addresses:
            by_type.setdefault(entry.get("type"), entry.get("address"))
        address = by_type.get("ExternalIP") or by_type.get("InternalIP")
        if address:
            result.append(address)
    return sorted(set(result))


def _service_port(service: t.Mapping[str, t.Any]) -> t.Optional[t.Mapping[str, t.Any]]:
    ports = (service.get("spec") or {}).get("ports") or []
    for port in ports:
        if port.get("port") == 2379:
            return port
    return ports[0] if ports else None


def cluster_endpoint(service_type: str, node_port: t.Optional[int], nodes: t.Any,
                     service: t.Optional[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    """Where peers reach this cluster's clustermesh-apiserver: ``{ips, port}`` or ``{address, port}``.

    NodePort: every node's address and the nodePort this run sets (the inventory owns it, so the
    plan holds before the Service exists). LoadBalancer: the Service's ingress, known only once
    the cloud has provisioned it; ``pending`` says so.
    """
    if service_type == "NodePort":
        ips = node_addresses(nodes)
        if not ips:
            return {"pending": "no node has an InternalIP or ExternalIP"}
        return {"ips": ips, "port": int(node_port)}
    if not service:
        return {"pending": "the clustermesh-apiserver Service does not exist yet"}
    spec = service.get("spec") or {}
    port = _service_port(service)
    if spec.get("type") != "LoadBalancer" or port is None:
        return {"pending": "the clustermesh-apiserver Service is %s, not LoadBalancer yet" % spec.get("type")}
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    ips = sorted({i["ip"] for i in ingress if i.get("ip")})
    if ips:
        return {"ips": ips, "port": int(port["port"])}
    hostnames = sorted({i["hostname"] for i in ingress if i.get("hostname")})
    if hostnames:
        return {"address": hostnames[0], "port": int(port["port"])}
    return {"pending": "the load balancer has no ingress address yet"}


def clustermesh_node_port(settings: t.Mapping[str, t.Any], cluster_id: t.Any) -> t.Optional[int]:
    """The clustermesh-apiserver nodePort a cluster gets, None unless its Service is a NodePort.

    ``settings`` holds the role inputs without their ``cilium_clustermesh_`` prefix (``service_type``,
    ``node_port``, ``node_port_base``): ``node_port`` pins it, else ``node_port_base`` (32000) + the ID.
    """
    if (settings.get("service_type") or "NodePort") != "NodePort":
        return None
    pinned = settings.get("node_port")
    if pinned not in (None, ""):
        try:
            return int(pinned)
        except (TypeError, ValueError):
            raise CiliumError("cilium_clustermesh_node_port %r is not a port number" % (pinned,)) from None
    base = settings.get("node_port_base")
    try:
        return int(NODE_PORT_BASE if base in (None, "") else base) + int(cluster_id or 0)
    except (TypeError, ValueError):
        raise CiliumError("cilium_clustermesh_node_port_base %r is not a port number" % (base,)) from None


def shared_node_ports(ports: t.Mapping[str, t.Optional[int]]) -> t.Dict[int, t.List[str]]:
    """nodePort -> the clusters (two or more) of one group that would use it."""
    users: t.Dict[int, t.List[str]] = {}
    for name, port in ports.items():
        if port:
            users.setdefault(port, []).append(name)
    return {port: sorted(names) for port, names in sorted(users.items()) if len(names) > 1}


def node_port_problems(group: t.Any, ports: t.Mapping[str, t.Optional[int]]) -> t.List[Problem]:
    """The nodePort rules of one group, for validation and the role's preflight alike: each port in
    the NodePort range, and no port used by two clusters (with kube-proxy replacement an agent dialing
    a peer's nodePort equal to its own reaches its local apiserver: cilium/cilium#24692, #30297)."""
    low, high = NODE_PORT_RANGE
    problems = []
    for name, port in sorted(ports.items()):
        if port is not None and not low <= port <= high:
            problems.append(problem(
                "CILIUM_NODE_PORT_OUT_OF_RANGE", "cluster %s: clustermesh-apiserver nodePort %s is outside %d-%d."
                % (name, port, low, high),
                "set cilium_clustermesh_node_port for this cluster, or a lower cilium_clustermesh_node_port_base",
                [name], group, "cilium_clustermesh_node_port"))
    for port, names in shared_node_ports(ports).items():
        problems.append(problem(
            "CILIUM_NODE_PORT_CLASH", "in network group %s, clusters %s share clustermesh-apiserver nodePort %d; an "
            "agent with kube-proxy replacement dialing that port reaches its own apiserver, not the peer's."
            % (group, ", ".join(names), port),
            "give each cluster of %s its own cilium_clustermesh_node_port (or leave it out: "
            "cilium_clustermesh_node_port_base + cluster_id differs per cluster)" % group,
            names, group, "cilium_clustermesh_node_port"))
    return problems


# ---- cluster IDs the inventory leaves out -------------------------------------------------------

IdChoice = t.Dict[str, t.Dict[str, t.Any]]  # inventory name -> {id, source: inventory | running | allocated}


def allocate_ids(entries: t.Sequence[t.Mapping[str, t.Any]], max_id: int) -> t.Tuple[IdChoice, t.List[Problem]]:
    """A cluster ID for every Cilium cluster: the inventory's, else the one it runs with, else the lowest free.

    ``entries`` in inventory order: ``{inventory_name, name, group, cilium, given, running}`` for every
    cluster of the inventory (``given``: its ``cluster_id`` or None; ``running``: the ``cluster-id``
    its cilium-config holds, None when not read or not installed; ``cilium``: whether it needs an
    ID). Every given ID is taken, then the running IDs of the clusters that give none, then the
    lowest free IDs in inventory order: so adding a cluster never renumbers another, and re-runs
    keep what the first run chose. Returns ``{inventory_name: {id, source}}`` for the Cilium
    clusters and the problems (a running ID another cluster's inventory sets; no free ID left).
    """
    taken: t.Dict[int, str] = {}
    for entry in entries:
        if entry.get("given") is not None:
            taken.setdefault(int(entry["given"]), entry["name"])
    ids: IdChoice = {}
    problems: t.List[Problem] = []
    wanting = [e for e in entries if e.get("cilium")]
    for entry in wanting:
        if entry.get("given") is not None:
            ids[entry["inventory_name"]] = {"id": int(entry["given"]), "source": "inventory"}
    for entry in wanting:
        running = entry.get("running")
        if entry.get("given") is not None or running in (None, "", 0, "0"):
            continue
        running = int(running)
        holder = taken.get(running)
        if holder is not None:
            problems.append(problem(
                "ID_RUNNING_TAKEN",
                "cluster %s runs with cluster ID %d and sets no cluster_id, but %s holds that ID." % (
                    entry["name"], running, holder),
                "set cluster_id of %s to the ID it should keep (a cluster whose ID changes reconnects to its "
                "peers), or give %s another one" % (entry["name"], holder),
                [entry["name"], holder], entry.get("group"), "cluster_id"))
            continue
        taken[running] = entry["name"]
        ids[entry["inventory_name"]] = {"id": running, "source": "running"}
    free = (n for n in range(1, max_id + 1) if n not in taken)
    for entry in wanting:
        if entry["inventory_name"] in ids or entry.get("given") is not None or \
                entry.get("running") not in (None, "", 0, "0"):
            continue
        chosen = next(free, None)
        if chosen is None:
            problems.append(problem(
                "ID_EXHAUSTED", "no cluster ID in 1..%d is free for cluster %s." % (max_id, entry["name"]),
                "set mesh_max_connected_clusters: 511, or remove clusters", [entry["name"]], entry.get("group"),
                "cluster_id"))
            continue
        taken[chosen] = entry["name"]
        ids[entry["inventory_name"]] = {"id": chosen, "source": "allocated"}
    return ids, problems


def id_report(ids: t.Mapping[str, t.Mapping[str, t.Any]], names: t.Mapping[str, str]) -> t.List[str]:
    """One line per Cilium cluster: its ID and where the ID came from."""
    return ["%s: cluster ID %d (%s)" % (names.get(inv, inv), entry["id"], {
        "inventory": "cluster_id", "running": "kept: the ID it runs with",
        "allocated": "allocated: lowest free"}[entry["source"]]) for inv, entry in sorted(
            ids.items(), key=lambda item: names.get(item[0], item[0]))]


def member(cluster: t.Any, settings: t.Mapping[str, t.Any], nodes: t.Any, service: t.Any,
           cluster_id: t.Any = None) -> t.Dict[str, t.Any]:
    """What peers need to know about one cluster (a ``_topology.Cluster``): name, ID, group, endpoint.

    ``cluster_id``: the ID ``allocate_ids`` chose, when the inventory sets none.
    """
    cluster_id = cluster.cluster_id if cluster_id in (None, "") else cluster_id
    service_type = settings.get("service_type") or "NodePort"
    node_port = clustermesh_node_port(settings, cluster_id)
    if node_port is None and settings.get("node_port") not in (None, ""):
        node_port = int(settings["node_port"])
    return {
        "inventory_name": cluster.inventory_name,
        "name": cluster.name,
        "id": cluster_id,
        "group": cluster.network_group,
        "pod_cidrs": list(cluster.pod_cidrs),
        "service_type": service_type,
        "node_port": int(node_port) if node_port not in (None, "") else None,
        "endpoint": cluster_endpoint(service_type, node_port, nodes, service),
    }


def chart_problems(chart_ref: str, found_version: t.Any, wanted_version: t.Any) -> t.List[Problem]:
    """A chart directory of another version than ``cilium_chart_version``, which decides the values' format."""
    if str(found_version) == str(wanted_version):
        return []
    return [problem("CILIUM_CHART_VERSION_MISMATCH",
                    "the chart in %s is version %s, but cilium_chart_version is %s (it decides the values format)."
                    % (chart_ref, found_version, wanted_version),
                    "set cilium_chart_version: \"%s\", or point cilium_chart_ref to the chart you mean" % found_version,
                    field="cilium_chart_version")]


def mesh_problems(members: t.Iterable[t.Mapping[str, t.Any]],
                  expected: t.Mapping[str, t.Iterable[str]]) -> t.List[Problem]:
    """Problems that must stop the run before any change: ports, service types, clusters left out.

    ``expected``: group -> inventory names of every Cilium cluster of that group in the inventory,
    so a ``--limit`` that leaves a member out is refused instead of disconnecting it.
    """
    problems = []
    by_group: t.Dict[str, t.List[t.Mapping[str, t.Any]]] = {}
    for entry in members:
        by_group.setdefault(entry["group"], []).append(entry)
        if entry["service_type"] not in SERVICE_TYPES:
            problems.append(problem(
                "CILIUM_SERVICE_TYPE_INVALID", "cluster %s: cilium_clustermesh_service_type is %r."
                % (entry["name"], entry["service_type"]), "use NodePort or LoadBalancer", [entry["name"]],
                entry["group"], "cilium_clustermesh_service_type"))
    for group, entries in sorted(by_group.items()):
        # The rules validation applies too, for runs of the role on its own. A NodePort Service
        # without a port (no cluster_id to add to the base) is out of range as well.
        problems.extend(node_port_problems(group, {e["name"]: e.get("node_port") or 0 for e in entries
                                                   if e["service_type"] == "NodePort"}))
        present = {e["inventory_name"] for e in entries}
        missing = sorted(set(expected.get(group) or ()) - present)
        if missing:
            problems.append(problem(
                "CILIUM_GROUP_MEMBER_LEFT_OUT", "network group %s: %s %s in the inventory but not in this run "
                "(--limit?); their peers would be disconnected." % (group, ", ".join(missing),
                                                                    "is" if len(missing) == 1 else "are"),
                "run on every cluster of the group", missing, group, "--limit"))
    return problems


# ---- values ------------------------------------------------------------------------------------
def _flag(value: t.Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def group_pod_ranges(members: t.Iterable[t.Mapping[str, t.Any]], group: t.Any) -> t.List[t.Tuple[str, t.Any]]:
    """(cluster name, Pod network) of every member of ``group``; ranges validation refuses are skipped."""
    ranges = []
    for entry in members:
        if entry.get("group") != group:
            continue
        for value in entry.get("pod_cidrs") or []:
            try:
                ranges.append((entry["name"], parse_cidr(value)))
            except CidrError:
                continue
    return ranges


def datapath(name: str, group: t.Any, settings: t.Mapping[str, t.Any],
             ranges: t.Sequence[t.Tuple[str, t.Any]]) -> t.Tuple[t.Dict[str, t.Any], t.List[Problem]]:
    """The routing and masquerading values of one cluster of a Cilium group, and why they cannot be made.

    Pod-to-Pod traffic inside the group must reach the peer with the Pod's own address (no SNAT):
    * tunnel: traffic to a peer's Pods leaves through the tunnel device, which Cilium never
      masquerades; nothing more is needed.
    * native: Cilium masquerades whatever leaves a native device towards an address outside the
      native routing CIDR, so that CIDR must span every Pod range of the group. The inventory gives
      it (``cilium_native_routing_cidrs``, one per family) or it is the smallest range covering them.
    * ``cilium_ip_masq_agent``: eBPF masquerading with ip-masq-agent, which exempts exactly the
      group's Pod ranges; no wide range is needed then.
    ``settings`` holds the role inputs without their ``cilium_`` prefix; ``ranges`` every member's Pod networks.
    """
    problems: t.List[Problem] = []
    mode = settings.get("routing_mode") or "tunnel"
    if mode not in ROUTING_MODES:
        return {}, [problem("CILIUM_ROUTING_MODE_INVALID", "cluster %s: cilium_routing_mode is %r." % (name, mode),
                            "use tunnel or native", [name], group, "cilium_routing_mode")]
    agent = _flag(settings.get("ip_masq_agent"))
    values: t.Dict[str, t.Any] = {"routingMode": mode}
    if agent:
        exempt = sorted({str(net) for _c, net in ranges}, key=lambda c: (":" in c, c))
        values["bpf"] = {"masquerade": True}
        values["ipMasqAgent"] = {"enabled": True, "config": {"nonMasqueradeCIDRs": exempt, "masqLinkLocal": False}}
    if mode != "native":
        return values, problems
    given = []
    for value in settings.get("native_routing_cidrs") or []:
        try:
            given.append(parse_cidr(value))
        except CidrError as err:
            problems.append(problem("CILIUM_NATIVE_ROUTING_CIDR_INVALID", "cluster %s: cilium_native_routing_cidrs "
                                    "entry %r: %s." % (name, value, err.reason), err.fix, [name], group,
                                    "cilium_native_routing_cidrs"))
    for family, key in ((4, "ipv4NativeRoutingCIDR"), (6, "ipv6NativeRoutingCIDR")):
        members = [(cluster, net) for cluster, net in ranges if net.version == family]
        chosen = [net for net in given if net.version == family]
        if len(chosen) > 1:
            problems.append(problem("CILIUM_NATIVE_ROUTING_CIDR_INVALID", "cluster %s: cilium_native_routing_cidrs "
                                    "has %d IPv%d ranges; Cilium takes one per family." % (name, len(chosen), family),
                                    "give one range per family that spans every Pod range of %s" % group,
                                    [name], group, "cilium_native_routing_cidrs"))
            continue
        if chosen:
            missed = sorted({"%s %s" % (cluster, net) for cluster, net in members if not net.subnet_of(chosen[0])})
            if missed:
                problems.append(problem(
                    "CILIUM_NATIVE_ROUTING_CIDR_UNCOVERED", "in network group %s, cluster %s's native routing CIDR "
                    "%s does not span Pod range %s: Cilium would masquerade Pod traffic to it."
                    % (group, name, chosen[0], ", ".join(missed)),
                    "widen cilium_native_routing_cidrs of %s to span every Pod range of the group, or leave it "
                    "out to have it derived" % name, sorted({name} | {m.split()[0] for m in missed}), group,
                    "cilium_native_routing_cidrs"))
            values[key] = str(chosen[0])
            continue
        cover = covering_network(net for _c, net in members)
        if cover is None:
            continue
        if cover.prefixlen >= WIDEST_DERIVED_PREFIX[family]:
            values[key] = str(cover)
        elif not agent:
            problems.append(problem(
                "CILIUM_NATIVE_ROUTING_CIDR_TOO_WIDE", "in network group %s (native routing), the only range that "
                "spans every Pod range (%s) is %s: traffic to every address in it, outside the mesh too, would "
                "leave the clusters un-masqueraded." % (group, ", ".join(sorted({str(n) for _c, n in members})), cover),
                "set cilium_ip_masq_agent: true (exempts exactly the group's Pod ranges), or give "
                "cilium_native_routing_cidrs, or renumber the Pod ranges into one block",
                sorted({cluster for cluster, _n in members}), group, "cilium_native_routing_cidrs"))
    return values, problems


def datapath_problems(group: t.Any, settings: t.Mapping[str, t.Mapping[str, t.Any]],
                      ranges: t.Sequence[t.Tuple[str, t.Any]]) -> t.List[Problem]:
    """Every datapath problem of one Cilium group: each cluster's own, and modes that differ."""
    problems = []
    modes: t.Dict[str, t.List[str]] = {}
    for name in sorted(settings):
        # A rule on the group's ranges fires for each member alike: report it once.
        problems.extend(p for p in datapath(name, group, settings[name], ranges)[1] if p not in problems)
        modes.setdefault(str(settings[name].get("routing_mode") or "tunnel"), []).append(name)
    if len(modes) > 1:
        problems.append(problem(
            "CILIUM_ROUTING_MODE_MIXED", "in network group %s, clusters use different Cilium routing modes (%s); "
            "ClusterMesh needs one datapath mode in every cluster."
            % (group, "; ".join("%s: %s" % (mode, ", ".join(names)) for mode, names in sorted(modes.items()))),
            "set one cilium_routing_mode for the whole group", sorted(settings), group, "cilium_routing_mode"))
    return problems


def peer_entries(self_name: str, group: t.Any, members: t.Iterable[t.Mapping[str, t.Any]],
                 fmt: str) -> t.Tuple[t.Any, t.List[str]]:
    """``clustermesh.config.clusters`` for one cluster and the peers left out because they have no endpoint."""
    entries: t.Dict[str, t.Dict[str, t.Any]] = {}
    pending = []
    for entry in sorted(members, key=lambda e: e["name"]):
        if entry["group"] != group or entry["name"] == self_name:
            continue
        endpoint = entry.get("endpoint") or {}
        if "pending" in endpoint:
            pending.append("%s (%s)" % (entry["name"], endpoint["pending"]))
            continue
        value: t.Dict[str, t.Any] = {"port": endpoint["port"]}
        if endpoint.get("ips"):
            value["ips"] = list(endpoint["ips"])
        else:
            value["address"] = endpoint["address"]
        entries[entry["name"]] = value
    if fmt == "map":
        return entries, pending
    return [dict({"name": name}, **value) for name, value in entries.items()], pending


def ipam_values(mode: str, pod_cidrs: t.Iterable[str]) -> t.Dict[str, t.Any]:
    """Cilium's IPAM: with cluster-pool, the pools are the inventory's Pod CIDRs (not the chart's 10.0.0.0/8)."""
    if mode != "cluster-pool":
        return {"mode": mode}
    v4 = [c for c in pod_cidrs or [] if ":" not in str(c)]
    v6 = [c for c in pod_cidrs or [] if ":" in str(c)]
    operator: t.Dict[str, t.Any] = {}
    if v4:
        operator["clusterPoolIPv4PodCIDRList"] = v4
    if v6:
        operator["clusterPoolIPv6PodCIDRList"] = v6
    return {"mode": mode, "operator": operator}


def role_values(cluster: t.Mapping[str, t.Any], settings: t.Mapping[str, t.Any], peers: t.Any,
                ca: t.Optional[t.Mapping[str, str]], ranges: t.Sequence[t.Tuple[str, t.Any]] = ()) -> t.Dict[str, t.Any]:
    """The keys this collection owns in the Cilium release; ``ranges``: the group's Pod networks."""
    routing, problems = datapath(cluster["name"], cluster["group"], settings, ranges)
    if problems:
        raise CiliumError(refusal("Cilium values", problems))
    service: t.Dict[str, t.Any] = {"type": cluster["service_type"],
                                   "annotations": dict(settings.get("service_annotations") or {})}
    if cluster["service_type"] == "NodePort":
        service["nodePort"] = cluster["node_port"]
    values: t.Dict[str, t.Any] = {
        "cluster": {"name": cluster["name"], "id": int(cluster["id"])},
        "clustermesh": {
            "useAPIServer": True,
            "maxConnectedClusters": int(settings.get("max_connected_clusters") or 255),
            "config": {"enabled": True, "clusters": peers},
            "apiserver": {
                "service": service,
                # certificates issued by Helm from the shared CA: the cronJob method needs a Job to really run
                "tls": {"auto": {"enabled": True, "method": "helm"}},
            },
        },
    }
    values.update(routing)
    if settings.get("ipam_mode"):
        values["ipam"] = ipam_values(settings["ipam_mode"], settings.get("pod_cidrs") or [])
    ca_values = rotation_values(ca)
    if ca_values:
        values["tls"] = ca_values["tls"]
    if "podAnnotations" in ca_values:
        # a CA rotation under way: the stage restarts the Pods that load the trusted CAs at start
        values["podAnnotations"] = ca_values["podAnnotations"]
        values["clustermesh"]["apiserver"]["podAnnotations"] = ca_values["clustermesh"]["apiserver"]["podAnnotations"]
    return values


def merge_extra(owned: t.Mapping[str, t.Any], extra: t.Optional[t.Mapping[str, t.Any]]) -> t.Tuple[t.Dict[str, t.Any], t.List[str]]:
    """User values under the owned ones; returns the merge and the dotted keys where the owned value won."""
    conflicts: t.List[str] = []

    def merge(base: t.Any, top: t.Any, path: str) -> t.Any:
        if isinstance(base, dict) and isinstance(top, dict):
            result = copied(base)
            for key, value in top.items():
                here = "%s.%s" % (path, key) if path else str(key)
                result[key] = merge(base[key], value, here) if key in base else copied(value)
            return result
        if base != top:
            conflicts.append(path)
        return copied(top)

    merged = merge(dict(extra or {}), dict(owned), "")
    return merged, sorted(conflicts)


def render(cluster: t.Mapping[str, t.Any], members: t.Iterable[t.Mapping[str, t.Any]], settings: t.Mapping[str, t.Any],
           ca: t.Optional[t.Mapping[str, str]], extra: t.Optional[t.Mapping[str, t.Any]],
           chart_version: t.Any) -> t.Dict[str, t.Any]:
    """Full values of one cluster plus what the run should tell the user."""
    fmt = clusters_format(chart_version)
    members = list(members)
    peers, pending = peer_entries(cluster["name"], cluster["group"], members, fmt)
    owned = role_values(cluster, settings, peers, ca, group_pod_ranges(members, cluster["group"]))
    values, conflicts = merge_extra(owned, extra)
    return {
        "values": values,
        "format": fmt,
        "peers": sorted(peers) if isinstance(peers, dict) else [p["name"] for p in peers],
        "pending_peers": pending,
        "conflicts": conflicts,
    }


# ---- read-back helpers shared by every reader -----------------------------------------------------
def clustermesh_secret_peers(data: t.Optional[t.Mapping[str, t.Any]], own: t.Optional[str] = None) -> t.List[str]:
    """Peers configured in a ``cilium-clustermesh`` Secret's data (base64 values), as cilium-cli's status
    counts them: a key is a peer when its etcd configuration names endpoints. Other keys hold TLS
    material (``<peer>.etcd-client.crt``) or, from chart 1.20 on, host aliases. The cluster's own
    name (``own``) is never its peer."""
    peers = []
    for key, value in (data or {}).items():
        if "." in key or key == own:
            continue
        try:
            text = base64.b64decode(value or "", validate=False)
        except (binascii.Error, ValueError):
            continue
        if b"endpoints:" in text:
            peers.append(key)
    return sorted(peers)


# ---- CA ----------------------------------------------------------------------------------------
def choose_ca(group: str, secrets: t.Mapping[str, t.Optional[t.Mapping[str, str]]], source_cluster: t.Optional[str],
              provided: t.Optional[t.Mapping[str, str]]) -> t.Dict[str, t.Any]:
    """Which CA a network group uses: provided > the one already in the clusters > controller files.

    ``secrets``: cluster -> ``cilium-ca`` Secret data (base64 ``ca.crt`` / ``ca.key``) or None.
    Returns ``{source, cluster?, cert?, key?}``; source ``cluster`` carries the data to adopt,
    ``files`` means read (or generate once) the controller's copy.
    """
    found = {name: data for name, data in secrets.items() if data and data.get("ca.crt") and data.get("ca.key")}
    if provided and provided.get("cert") and provided.get("key"):
        running = {pem_fingerprint(data["ca.crt"]) for data in found.values()}
        wanted = pem_fingerprint(provided["cert"])
        if len(running) == 1 and wanted not in running:
            # Re-issuing every cluster's certificates from another CA in one run leaves pairs that do not
            # trust each other until the last cluster is done: the rotation's stages avoid that.
            raise CiliumError(refusal("Cilium CA", [problem(
                "CILIUM_CA_PROVIDED_DIFFERS",
                "network group %s: cilium_ca_cert is CA %s, but the clusters run CA %s; switching at once would "
                "disconnect them until every cluster is done." % (group, wanted or "unreadable", running.pop()),
                "move the group to that CA with playbooks/ca_rotate.yml (cilium_ca_rotate_cert and cilium_ca_rotate_key "
                "set to it), or set cilium_ca_cert and cilium_ca_key to the CA the clusters run",
                sorted(found), group, "cilium_ca_cert")]))
        return {"source": "provided"}
    if source_cluster:
        if source_cluster not in found:
            raise CiliumError(refusal("Cilium CA", [problem(
                "CILIUM_CA_SOURCE_INVALID",
                "network group %s: cilium_ca_source_cluster is %s, which has no cilium-ca Secret with ca.crt and ca.key "
                "(clusters with one: %s)." % (group, source_cluster, ", ".join(sorted(found)) or "none"),
                "name one of those, or unset it", [source_cluster], group, "cilium_ca_source_cluster")]))
        chosen = source_cluster
    else:
        prints: t.Dict[str, t.List[str]] = {}
        for name, data in sorted(found.items()):
            prints.setdefault(pem_fingerprint(data["ca.crt"]) or "unreadable", []).append(name)
        if len(prints) > 1:
            detail = "; ".join("%s on %s" % (fp, ", ".join(names)) for fp, names in sorted(prints.items()))
            raise CiliumError(refusal("Cilium CA", [problem(
                "CILIUM_CA_CONFLICT",
                "network group %s: clusters already run different Cilium CAs (%s); one mesh needs one CA." % (group, detail),
                "set cilium_ca_source_cluster to the cluster whose CA the others adopt (their Cilium certificates are "
                "re-issued)", sorted(found), group, "cilium_ca_source_cluster")]))
        if not found:
            return {"source": "files"}
        chosen = sorted(found)[0]
    return {"source": "cluster", "cluster": chosen, "cert": found[chosen]["ca.crt"], "key": found[chosen]["ca.key"]}


def mask_values(before: t.Any, after: t.Any) -> t.Tuple[t.Any, t.Any]:
    """Copies of two value trees with secrets replaced, so a diff shows that a key changed, never the key."""
    before = copied(before) if isinstance(before, dict) else {}
    after = copied(after) if isinstance(after, dict) else {}
    for path in SECRET_PATHS:
        old, new = _get(before, path), _get(after, path)
        if old is not None:
            _set(before, path, MASK)
        if new is not None:
            _set(after, path, MASK if new == old else MASK_CHANGED)
    # The certificate is public but long; its fingerprint says the same in a diff.
    for tree in (before, after):
        cert = _get(tree, CERT_PATH)
        if cert is not None:
            _set(tree, CERT_PATH, "<certificate %s>" % (pem_fingerprint(cert) or "unreadable"))
        bundle = _get(tree, BUNDLE_PATH)
        if bundle is not None:
            _set(tree, BUNDLE_PATH, "<certificates %s>" % ", ".join(bundle_fingerprints(bundle) or ["unreadable"]))
    return before, after


def _get(tree: t.Mapping[str, t.Any], path: t.Sequence[str]) -> t.Any:
    node: t.Any = tree
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _set(tree: t.Dict[str, t.Any], path: t.Sequence[str], value: t.Any) -> None:
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


# ---- read-back ---------------------------------------------------------------------------------
def mesh_report(expected: t.Mapping[str, t.Mapping[str, t.Any]],
                observed: t.Mapping[str, t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    """Compare what each cluster runs with the plan.

    ``expected``: cluster -> ``{name, id, group, peers}`` (peers: ``Topology.peers``, as the status
    report expects them); ``observed``: cluster -> ``{config: cilium-config data, peers:
    clustermesh_secret_peers of its cilium-clustermesh Secret, ca_fingerprint: first certificate of cilium-ca,
    ca_trust: fingerprints of the CAs it trusts (its trust bundle, else cilium-ca's certificates)}``.
    """
    clusters: t.Dict[str, t.Dict[str, t.Any]] = {}
    groups: t.Dict[t.Any, t.Dict[str, t.Any]] = {}
    for name in sorted(expected):
        got = observed.get(name) or {}
        groups.setdefault(expected[name].get("group"), {})[name] = {
            "issuer": got.get("ca_fingerprint"), "trust": got.get("ca_trust") or [got.get("ca_fingerprint")]}
    untrusted: t.Dict[str, t.List[str]] = {}
    for members in groups.values():
        untrusted.update(trust_mismatches(members))
    for name in sorted(expected):
        want = expected[name]
        got = observed.get(name) or {}
        config = got.get("config") or {}
        peers = compare_names(want.get("peers") or [], got.get("peers") or [])
        entry = {
            "cluster_name": config.get("cluster-name"),
            "cluster_id": config.get("cluster-id"),
            "identity_ok": config.get("cluster-name") == want["name"] and str(config.get("cluster-id")) == str(want["id"]),
            "configured_peers": peers["configured"],
            "missing_peers": peers["missing"],
            "unexpected_peers": peers["stale"],
            "ca_fingerprint": got.get("ca_fingerprint"),
            "ca_trust": list(got.get("ca_trust") or []),
            # every peer trusts the CA that issues this cluster's certificates, and the other way round
            "ca_match": got.get("ca_fingerprint") is not None and not untrusted[name],
        }
        entry["ok"] = bool(entry["identity_ok"] and not entry["missing_peers"] and not entry["unexpected_peers"]
                           and entry["ca_match"])
        clusters[name] = entry
    return {"ok": all(c["ok"] for c in clusters.values()), "clusters": clusters}


def render_report(report: t.Mapping[str, t.Any]) -> t.List[str]:
    lines = ["%-12s %-4s %-5s %-24s %-16s %-16s %s" % ("CLUSTER", "ID", "OK", "PEERS", "MISSING", "UNEXPECTED", "CA")]
    for name, entry in sorted(report["clusters"].items()):
        lines.append("%-12s %-4s %-5s %-24s %-16s %-16s %s%s" % (
            name, entry["cluster_id"] if entry["cluster_id"] is not None else "-", "yes" if entry["ok"] else "NO",
            ",".join(entry["configured_peers"]) or "-", ",".join(entry["missing_peers"]) or "-",
            ",".join(entry["unexpected_peers"]) or "-", entry["ca_fingerprint"] or "none",
            "" if entry["ca_match"] else " (MISMATCH)"))
    return lines
