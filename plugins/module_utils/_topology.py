# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The topology model: clusters, network groups and the interconnect list, and its validation.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

Pure and stdlib-only: no Ansible, no network. Everything that touches a cluster reads the
inventory through ``topology_from_inventory`` and refuses to act unless ``validate`` reports
no error, so every problem is found at once, before any change.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils import _cilium, _kosmos
from ansible_collections.multicloud.interconnect.plugins.module_utils._cidr import (
    CidrError,
    Network,
    find_overlaps,
    overlap_components,
    parse_cidr,
)
# Problem and the severities are part of this module's interface too: callers and tests read them here.
from ansible_collections.multicloud.interconnect.plugins.module_utils._inventory import (
    as_list,
    cluster_cni,
    cluster_name,
    host_variables,
)
from ansible_collections.multicloud.interconnect.plugins.module_utils._problems import (
    ERROR,
    INFO,
    WARNING,
    Problem,
    problem,
    refusal,
    render,
)

CNI_CHOICES = ("cilium", "kosmos", "none")
GATEWAY_SERVICE_TYPES = ("LoadBalancer", "NodePort")
MAX_CONNECTED_CHOICES = (255, 511)
DEFAULT_MAX_CONNECTED = 255
NAME_MAX_LENGTH = 32
# Cilium's cluster name rule (pkg/clustermesh/types): a DNS-1123 label of at most 32 characters.
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Cluster IDs with bit 7 set collide with the ENI / AlibabaCloud IPAM and aws-cni chaining marks.
_BUGGY_ID_IPAM = ("eni", "alibabacloud")
_BUGGY_ID_CHAINING = ("aws-cni",)

_SEVERITY_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}

# Inventory variables of the contract (see README "Inventory contract").
CLUSTER_VARS = (
    "cluster_name",
    "cluster_id",
    "cluster_pod_cidrs",
    "cluster_service_cidrs",
    "cluster_node_cidrs",
    "cluster_network_group",
    "cluster_cni",
    "cluster_eastwest_gateway",
    "cluster_global_cidrs",
    "cluster_ipam_mode",
    "cluster_cni_chaining_mode",
    "cluster_kubeconfig",
    "cluster_context",
    "mesh_max_connected_clusters",
)
# Role settings that decide whether a group can connect at all, so validation reads them too
# (role defaults apply when the inventory leaves them out).
VALIDATED_SETTINGS = (
    "cilium_clustermesh_service_type",
    "cilium_clustermesh_node_port",
    "cilium_clustermesh_node_port_base",
    "cilium_routing_mode",
    "cilium_native_routing_cidrs",
    "cilium_ip_masq_agent",
    "kosmos_local_cidrs",
    "kosmos_bridge_cidrs",
)
# Every technique setting a Cluster carries: the validated ones and what Kosmos plans per member.
CLUSTER_SETTINGS = VALIDATED_SETTINGS + tuple(v for v in _kosmos.MEMBER_VARS if v not in VALIDATED_SETTINGS)
# What the model reads from each cluster host.
INVENTORY_VARS = CLUSTER_VARS + CLUSTER_SETTINGS


@dataclasses.dataclass
class Cluster:
    """A cluster as the inventory declares it. Raw values are kept so validation can name them."""

    name: str
    inventory_name: str
    cluster_id: t.Any = None
    pod_cidrs: t.List[t.Any] = dataclasses.field(default_factory=list)
    service_cidrs: t.List[t.Any] = dataclasses.field(default_factory=list)
    node_cidrs: t.List[t.Any] = dataclasses.field(default_factory=list)
    network_group: t.Any = None
    cni: t.Any = None
    eastwest_gateway: t.Any = None
    global_cidrs: t.Any = None
    ipam_mode: t.Optional[str] = None
    cni_chaining_mode: t.Optional[str] = None
    max_connected_clusters: t.Any = DEFAULT_MAX_CONNECTED
    kubeconfig: t.Optional[str] = None
    context: t.Optional[str] = None
    # CLUSTER_SETTINGS the inventory sets for this cluster.
    settings: t.Dict[str, t.Any] = dataclasses.field(default_factory=dict)

    def id_int(self) -> t.Optional[int]:
        return _as_int(self.cluster_id)


@dataclasses.dataclass(frozen=True)
class NetworkGroup:
    name: str
    clusters: t.Tuple[str, ...]
    cni: t.Optional[str]
    gateway_clusters: t.Tuple[str, ...]
    interconnected: bool


@dataclasses.dataclass
class Topology:
    clusters: t.Dict[str, Cluster]
    interconnect_groups: t.List[t.Any]
    # ``mesh_clusters``: every inventory host of the mesh, when the inventory lists them, so a run
    # that sees only part of it (an AWX job slice) can tell.
    mesh_clusters: t.List[t.Any] = dataclasses.field(default_factory=list)

    def groups(self) -> t.Dict[str, NetworkGroup]:
        members = self.members()
        joined = {g for g in self.interconnect_groups if isinstance(g, str)}
        result = {}
        for name in sorted(members):
            group_clusters = members[name]
            cnis = sorted({c.cni for c in group_clusters if isinstance(c.cni, str)})
            result[name] = NetworkGroup(
                name=name,
                clusters=tuple(sorted(c.name for c in group_clusters)),
                cni=cnis[0] if len(cnis) == 1 else None,
                gateway_clusters=tuple(sorted(c.name for c in group_clusters if c.eastwest_gateway)),
                interconnected=name in joined,
            )
        return result

    def members(self, cni: t.Optional[str] = None) -> t.Dict[str, t.List[Cluster]]:
        """Network group -> its clusters in inventory order; with ``cni``, only the clusters of that technique."""
        result: t.Dict[str, t.List[Cluster]] = {}
        for cluster in self.clusters.values():
            group = cluster.network_group
            if isinstance(group, str) and group and (cni is None or cluster.cni == cni):
                result.setdefault(group, []).append(cluster)
        return result

    def by_name(self, name: str) -> t.Optional[Cluster]:
        """The cluster whose name (``cluster_name``, else its host name) is ``name``."""
        return next((c for c in self.clusters.values() if c.name == name), None)

    def peers(self, inventory_name: str) -> t.List[str]:
        """The names of the other clusters of this cluster's network group: the ones its L3 technique
        connects (``inventory_name`` is the host; a cluster named otherwise is still not its own peer)."""
        own = self.clusters[inventory_name]
        return sorted(c.name for c in self.clusters.values() if c.network_group == own.network_group and c is not own)


def _as_int(value: t.Any) -> t.Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def topology_from_inventory(
    cluster_vars: t.Mapping[str, t.Mapping[str, t.Any]],
    interconnect_groups: t.Any = None,
    mesh_clusters: t.Any = None,
) -> Topology:
    """Build the model from ``{inventory host name: its variables}`` of the ``clusters`` group.

    Clusters keep the mapping's order: the inventory's, which decides defaults such as a Kosmos
    group's host (its first cluster).
    """
    clusters: t.Dict[str, Cluster] = {}
    for inventory_name in cluster_vars:
        hv = cluster_vars[inventory_name] or {}
        name = cluster_name(inventory_name, hv)
        cluster = Cluster(
            name=str(name),
            inventory_name=inventory_name,
            cluster_id=hv.get("cluster_id"),
            pod_cidrs=as_list(hv.get("cluster_pod_cidrs")),
            service_cidrs=as_list(hv.get("cluster_service_cidrs")),
            node_cidrs=as_list(hv.get("cluster_node_cidrs")),
            network_group=hv.get("cluster_network_group"),
            cni=cluster_cni(hv),
            eastwest_gateway=hv.get("cluster_eastwest_gateway"),
            global_cidrs=hv.get("cluster_global_cidrs"),
            ipam_mode=hv.get("cluster_ipam_mode"),
            cni_chaining_mode=hv.get("cluster_cni_chaining_mode"),
            max_connected_clusters=hv.get("mesh_max_connected_clusters", DEFAULT_MAX_CONNECTED),
            kubeconfig=hv.get("cluster_kubeconfig"),
            context=hv.get("cluster_context"),
            settings={k: hv[k] for k in CLUSTER_SETTINGS if hv.get(k) is not None},
        )
        # Keyed by inventory name: two hosts may claim one cluster_name, and validation says so.
        clusters[inventory_name] = cluster
    return Topology(clusters=clusters, interconnect_groups=as_list(interconnect_groups),
                    mesh_clusters=as_list(mesh_clusters))


def cluster_from_vars(inventory_name: str, host_vars: t.Mapping[str, t.Any]) -> Cluster:
    """The model of one cluster host with these variables (what a planner of that cluster alone needs)."""
    return topology_from_inventory({inventory_name: host_vars}).clusters[inventory_name]


def topology_from_hostvars(hostvars: t.Any, names: t.Iterable[str], interconnect_groups: t.Any = None) -> Topology:
    """The model of the hosts ``names`` (the ``clusters`` group, in inventory order) from Ansible's ``hostvars``."""
    return topology_from_inventory(host_variables(hostvars, names, INVENTORY_VARS), interconnect_groups)


class Report:
    """The result of ``validate``: problems sorted by severity, and a per-cluster summary."""

    def __init__(self, topology: Topology, problems: t.List[Problem]) -> None:
        self.topology = topology
        self.problems = sorted(
            problems, key=lambda p: (_SEVERITY_ORDER[p.severity], p.code, p.group or "", p.clusters, p.message)
        )

    @property
    def errors(self) -> t.List[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> t.List[Problem]:
        return [p for p in self.problems if p.severity == WARNING]

    @property
    def infos(self) -> t.List[Problem]:
        return [p for p in self.problems if p.severity == INFO]

    @property
    def ok(self) -> bool:
        return not self.errors

    def cluster_summary(self) -> t.Dict[str, t.Dict[str, t.Any]]:
        per_cluster_errors: t.Dict[str, int] = {}
        for item in self.errors:
            for name in item.clusters:
                per_cluster_errors[name] = per_cluster_errors.get(name, 0) + 1
        summary = {}
        for cluster in self.topology.clusters.values():
            summary[cluster.name] = {
                "inventory_name": cluster.inventory_name,
                "cluster_id": cluster.id_int(),
                "network_group": cluster.network_group,
                "cni": cluster.cni,
                "pod_cidrs": [str(c) for c in cluster.pod_cidrs],
                "service_cidrs": [str(c) for c in cluster.service_cidrs],
                "eastwest_gateway": bool(cluster.eastwest_gateway),
                "errors": per_cluster_errors.get(cluster.name, 0),
            }
        return summary

    def as_dict(self) -> t.Dict[str, t.Any]:
        groups = self.topology.groups()
        return {
            "ok": self.ok,
            "errors": [p.as_dict() for p in self.errors],
            # Not "warnings": Ansible reserves that result key for its own warning channel.
            "findings": {
                "errors": [p.as_dict() for p in self.errors],
                "warnings": [p.as_dict() for p in self.warnings],
                "infos": [p.as_dict() for p in self.infos],
            },
            "clusters": self.cluster_summary(),
            "groups": {
                name: {
                    "clusters": list(g.clusters),
                    "cni": g.cni,
                    "eastwest_gateways": list(g.gateway_clusters),
                    "interconnected": g.interconnected,
                }
                for name, g in groups.items()
            },
            "interconnect_groups": list(self.topology.interconnect_groups),
        }

    def render(self) -> t.List[str]:
        """Lines a person reads at a terminal: the findings with fixes, then one row per cluster."""
        groups = self.topology.groups()
        lines = [
            "Topology: %d clusters in %d network groups; interconnect list: %s"
            % (
                len(self.topology.clusters),
                len(groups),
                ", ".join(str(g) for g in self.topology.interconnect_groups) or "(empty)",
            ),
            "Result: %s (%d errors, %d warnings, %d notes)"
            % ("OK" if self.ok else "REFUSED", len(self.errors), len(self.warnings), len(self.infos)),
        ]
        lines.extend(render(self.problems))
        header = ("CLUSTER", "ID", "GROUP", "CNI", "POD CIDRS", "SERVICE CIDRS", "E-W GW", "ERRORS")
        rows = [header]
        for name, row in sorted(self.cluster_summary().items()):
            rows.append((
                name,
                "-" if row["cluster_id"] is None else str(row["cluster_id"]),
                str(row["network_group"] or "-"),
                str(row["cni"] or "-"),
                ",".join(row["pod_cidrs"]) or "-",
                ",".join(row["service_cidrs"]) or "-",
                "yes" if row["eastwest_gateway"] else "no",
                str(row["errors"]),
            ))
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        for row in rows:
            lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        return lines

    def success_message(self) -> str:
        return "Topology is valid: %d clusters, %d network groups, %d warnings." % (
            len(self.topology.clusters), len(self.topology.groups()), len(self.warnings))

    def failure_message(self) -> str:
        """The refusal of the inventory, rendered as every refusal of the collection is."""
        return refusal("Topology validation", self.errors)


class _Checker:
    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.problems: t.List[Problem] = []
        # Parsed CIDRs per cluster and kind, filled by _check_cidrs; invalid ones are left out.
        self.networks: t.Dict[str, t.Dict[str, t.List[Network]]] = {}
        self.global_map: t.Dict[str, t.Dict[Network, Network]] = {}

    def add(self, code: str, severity: str, field: str, clusters: t.Iterable[str], message: str, fix: str,
            group: t.Optional[str] = None) -> None:
        self.problems.append(problem(code, message, fix, clusters, group, field, severity))

    # ---- names -------------------------------------------------------------------------------
    def check_names(self) -> None:
        seen: t.Dict[str, t.List[str]] = {}
        for cluster in self.topology.clusters.values():
            seen.setdefault(cluster.name, []).append(cluster.inventory_name)
            name = cluster.name
            field = "cluster_name" if cluster.name != cluster.inventory_name else "inventory host name"
            if len(name) > NAME_MAX_LENGTH:
                self.add("NAME_TOO_LONG", ERROR, field, [name],
                         "cluster name %r has %d characters; Cilium and Kosmos accept at most %d."
                         % (name, len(name), NAME_MAX_LENGTH),
                         "set cluster_name to a shorter name (the inventory host name may stay long)")
            if not _DNS1123_LABEL.match(name):
                self.add("NAME_INVALID", ERROR, field, [name],
                         "cluster name %r is not a DNS-1123 label (lower-case letters, digits and '-', "
                         "starting and ending with a letter or digit)." % name,
                         "set cluster_name to e.g. %r" % _suggest_label(name))
            if name == "default":
                self.add("NAME_RESERVED", ERROR, field, [name],
                         "cluster name 'default' is reserved: Cilium refuses it for a cluster with an ID.",
                         "set cluster_name to a name that says where the cluster runs, e.g. 'eu-west-1-prod'")
        for name, hosts in sorted(seen.items()):
            if len(hosts) > 1:
                self.add("NAME_DUPLICATE", ERROR, "cluster_name", [name],
                         "cluster name %r is claimed by inventory hosts %s." % (name, ", ".join(sorted(hosts))),
                         "give each cluster its own cluster_name")

    # ---- IDs ---------------------------------------------------------------------------------
    def check_ids(self) -> None:
        clusters = list(self.topology.clusters.values())
        maxima: t.Dict[int, t.List[str]] = {}
        for cluster in clusters:
            raw = cluster.max_connected_clusters
            value = _as_int(raw)
            if value not in MAX_CONNECTED_CHOICES:
                self.add("MAX_CONNECTED_INVALID", ERROR, "mesh_max_connected_clusters", [cluster.name],
                         "mesh_max_connected_clusters is %r; Cilium accepts only 255 or 511." % (raw,),
                         "set mesh_max_connected_clusters to 255 (the default) or 511 for the whole inventory")
                continue
            maxima.setdefault(value, []).append(cluster.name)
        if len(maxima) > 1:
            detail = "; ".join("%d for %s" % (m, ", ".join(sorted(n))) for m, n in sorted(maxima.items()))
            self.add("MAX_CONNECTED_MISMATCH", ERROR, "mesh_max_connected_clusters",
                     [n for names in maxima.values() for n in names],
                     "the mesh must use one max connected clusters value, found %s." % detail,
                     "set mesh_max_connected_clusters once in group_vars/all; it cannot change on a running "
                     "Cilium cluster")
        mesh_max = max(maxima) if len(maxima) == 1 else DEFAULT_MAX_CONNECTED
        by_id: t.Dict[int, t.List[str]] = {}
        for cluster in clusters:
            raw = cluster.cluster_id
            if raw is None:
                if cluster.cni == "cilium":
                    self.add("ID_TO_ALLOCATE", INFO, "cluster_id", [cluster.name],
                             "cluster %s uses Cilium and sets no cluster_id: the cilium stage keeps the ID it runs "
                             "with, or gives it the lowest ID no other cluster holds." % cluster.name,
                             "set cluster_id to pin one")
                continue
            value = _as_int(raw)
            if value is None:
                self.add("ID_NOT_INTEGER", ERROR, "cluster_id", [cluster.name],
                         "cluster_id %r is not an integer." % (raw,),
                         "set cluster_id to an integer in 1..%d" % mesh_max)
                continue
            if not 1 <= value <= mesh_max:
                hint = " (0 is reserved for clusters outside any mesh)" if value == 0 else ""
                extra = "" if mesh_max == 511 or value > 511 else "; or set mesh_max_connected_clusters: 511 for 1..511"
                self.add("ID_OUT_OF_RANGE", ERROR, "cluster_id", [cluster.name],
                         "cluster_id %d is outside 1..%d%s." % (value, mesh_max, hint),
                         "choose an unused ID in 1..%d%s" % (mesh_max, extra))
                continue
            by_id.setdefault(value, []).append(cluster.name)
            if value & 0x80:
                breaks = (str(cluster.ipam_mode or "").lower() in _BUGGY_ID_IPAM
                          or str(cluster.cni_chaining_mode or "").lower() in _BUGGY_ID_CHAINING)
                if breaks:
                    self.add("ID_BREAKS_ENI", WARNING, "cluster_id", [cluster.name],
                             "cluster_id %d has bit 7 set (128-255, 384-511), which breaks Cilium with ENI or "
                             "AlibabaCloud IPAM and aws-cni chaining (cluster uses %s)."
                             % (value, cluster.ipam_mode or cluster.cni_chaining_mode),
                             "choose an ID in 1..127 or 256..383")
                else:
                    self.add("ID_ENI_RANGE", INFO, "cluster_id", [cluster.name],
                             "cluster_id %d would break Cilium with ENI/AlibabaCloud IPAM or aws-cni chaining; "
                             "fine otherwise." % value, "")
        for value, names in sorted(by_id.items()):
            if len(names) > 1:
                self.add("ID_DUPLICATE", ERROR, "cluster_id", names,
                         "cluster_id %d is used by %s." % (value, ", ".join(sorted(names))),
                         "give each cluster its own ID; the first free ones are %s"
                         % _free_ids(by_id, mesh_max, len(names) - 1))

    # ---- CIDRs -------------------------------------------------------------------------------
    def _parse_list(self, cluster: Cluster, field: str, values: t.List[t.Any]) -> t.List[Network]:
        parsed = []
        for value in values:
            try:
                parsed.append(parse_cidr(value))
            except CidrError as err:
                code = "CIDR_HOST_BITS" if err.corrected else "CIDR_INVALID"
                self.add(code, ERROR, field, [cluster.name],
                         "%s entry %r of cluster %s: %s." % (field, err.value, cluster.name, err.reason), err.fix)
        return parsed

    def check_cidrs(self) -> None:
        for cluster in self.topology.clusters.values():
            kinds = {
                "pod": self._parse_list(cluster, "cluster_pod_cidrs", cluster.pod_cidrs),
                "service": self._parse_list(cluster, "cluster_service_cidrs", cluster.service_cidrs),
                "node": self._parse_list(cluster, "cluster_node_cidrs", cluster.node_cidrs),
            }
            self.networks[cluster.name] = kinds
            for kind in ("pod", "service"):
                if not getattr(cluster, kind + "_cidrs"):
                    self.add("CIDR_MISSING", ERROR, "cluster_%s_cidrs" % kind, [cluster.name],
                             "cluster %s has no %s CIDR." % (cluster.name, kind),
                             "set cluster_%s_cidrs to the range the cluster uses (kubeadm: %s)"
                             % (kind, "podSubnet" if kind == "pod" else "serviceSubnet"))
            families = [n.version for n in kinds["service"]]
            if len(families) != len(set(families)):
                self.add("CIDR_SERVICE_FAMILY_REPEATED", ERROR, "cluster_service_cidrs", [cluster.name],
                         "cluster %s lists more than one service CIDR of one IP family; Kubernetes takes at "
                         "most one IPv4 and one IPv6 range." % cluster.name,
                         "keep one range per family, as the API server's --service-cluster-ip-range has")
            items = [(net, kind) for kind, nets in kinds.items() for net in nets]
            for left, left_kind, right, right_kind in find_overlaps(items):
                if left_kind == right_kind and left != right and left_kind in ("pod", "node"):
                    continue  # nested pools of one kind in one cluster are the user's business
                message = "cluster %s: %s CIDR %s overlaps %s CIDR %s." % (
                    cluster.name, left_kind, left, right_kind, right)
                self.add("CIDR_OVERLAP_IN_CLUSTER", ERROR, "cluster_%s_cidrs" % right_kind, [cluster.name], message,
                         "a cluster's Pod, Service and node ranges must be disjoint; change one of them")
            self._check_global_map(cluster, kinds)

    def _is_mapping(self, cluster: Cluster, value: t.Any, field: str, code: str, what: str, example: str) -> bool:
        """True when ``value`` is a mapping; otherwise reports ``code`` on ``field`` with an example."""
        if isinstance(value, dict):
            return True
        self.add(code, ERROR, field, [cluster.name], "%s of %s must be %s." % (field, cluster.name, what),
                 "write it as %s" % example)
        return False

    def _check_global_map(self, cluster: Cluster, kinds: t.Dict[str, t.List[Network]]) -> None:
        raw = cluster.global_cidrs
        self.global_map[cluster.name] = {}
        field = "cluster_global_cidrs"
        if not raw or not self._is_mapping(cluster, raw, field, "GLOBAL_CIDR_INVALID", "a mapping of cluster CIDR to "
                                           "global CIDR", "{10.244.0.0/16: 10.10.0.0/16}"):
            return
        if cluster.cni != "kosmos":
            self.add("GLOBAL_CIDR_UNSUPPORTED", ERROR, field, [cluster.name],
                     "cluster %s maps CIDRs to global CIDRs, which only Kosmos ClusterLink does (cluster_cni is %r)."
                     % (cluster.name, cluster.cni),
                     "remove cluster_global_cidrs, or set cluster_cni: kosmos for the whole group")
            return
        own = {net: kind for kind in ("pod", "service") for net in kinds[kind]}
        for key, value in raw.items():
            try:
                local = parse_cidr(key)
                remote = parse_cidr(value)
            except CidrError as err:
                self.add("GLOBAL_CIDR_INVALID", ERROR, field, [cluster.name],
                         "cluster_global_cidrs of %s: %r: %s." % (cluster.name, err.value, err.reason), err.fix)
                continue
            if local not in own:
                self.add("GLOBAL_CIDR_KEY_UNKNOWN", ERROR, field, [cluster.name],
                         "cluster_global_cidrs of %s maps %s, which is not one of its Pod or Service CIDRs (%s)."
                         % (cluster.name, local, ", ".join(str(n) for n in own) or "none"),
                         "use a key equal to a cluster_pod_cidrs or cluster_service_cidrs entry, exactly")
                continue
            if local.version != remote.version or local.prefixlen != remote.prefixlen:
                self.add("GLOBAL_CIDR_SIZE_MISMATCH", ERROR, field, [cluster.name],
                         "cluster_global_cidrs of %s maps %s to %s; Kosmos translates address by address, so both "
                         "must be the same family and size." % (cluster.name, local, remote),
                         "use a global CIDR of prefix /%d in IPv%d" % (local.prefixlen, local.version))
                continue
            self.global_map[cluster.name][local] = remote

    def _effective(self, cluster: Cluster) -> t.List[t.Tuple[Network, t.Tuple[str, str, bool]]]:
        """Pod and Service networks as peers in the group see them: global CIDRs replace mapped ones."""
        mapping = self.global_map.get(cluster.name, {})
        result = []
        for kind in ("pod", "service"):
            for net in self.networks.get(cluster.name, {}).get(kind, []):
                if net in mapping:
                    result.append((mapping[net], (cluster.name, kind + " (global)", True)))
                else:
                    result.append((net, (cluster.name, kind, False)))
        return result

    def _named(self, name: str) -> Cluster:
        cluster = self.topology.by_name(name)
        if cluster is None:  # the names come from the model's own problems
            raise KeyError(name)
        return cluster

    def _members_by_group(self) -> t.Dict[str, t.List[Cluster]]:
        """Clusters per network group; a cluster without a usable group is reported by check_groups."""
        return self.topology.members()

    def check_overlaps_between_clusters(self) -> None:
        all_items = []
        for group, members in sorted(self._members_by_group().items()):
            items = [item for cluster in members for item in self._effective(cluster)]
            all_items.extend((net, (group,) + tag) for net, tag in items)
            for component in overlap_components(items):
                names = {tag[0] for _net, tag in component}
                if len(names) < 2:
                    continue  # one cluster alone: reported by the in-cluster check
                described = ", ".join("%s %s %s" % (tag[0], tag[1], net) for net, tag in component)
                if any(tag[2] for _net, tag in component):
                    self.add("GLOBAL_CIDR_OVERLAP", ERROR, "cluster_global_cidrs", names,
                             "in network group %s, global CIDRs overlap other ranges: %s." % (group, described),
                             "choose global CIDRs that are unique in the group and overlap no cluster range",
                             group=group)
                    continue
                kosmos = all(c.cni == "kosmos" for c in members)
                fix = ("give each cluster of %s its own Pod and Service ranges, or move one cluster to another "
                       "network group (groups reach each other through east-west gateways)" % group)
                if kosmos:
                    fix += ", or map the ranges with cluster_global_cidrs"
                self.add("CIDR_OVERLAP_IN_GROUP", ERROR, "cluster_pod_cidrs/cluster_service_cidrs", names,
                         "in network group %s, Pods reach each other by IP, but these ranges overlap: %s."
                         % (group, described), fix, group=group)
        for component in overlap_components(all_items):
            groups = sorted({tag[0] for _net, tag in component})
            if len(groups) < 2:
                continue
            described = ", ".join("%s/%s %s %s" % (tag[0], tag[1], tag[2], net) for net, tag in component)
            self.add("CIDR_OVERLAP_ACROSS_GROUPS", INFO, "cluster_pod_cidrs/cluster_service_cidrs",
                     {tag[1] for _net, tag in component},
                     "ranges overlap across groups %s (allowed: traffic between groups goes through east-west "
                     "gateways): %s." % (", ".join(groups), described), "")

    def check_node_ranges_in_groups(self) -> None:
        """Inside a group Pods and nodes share one routed space: a node network of one cluster that
        overlaps a peer's Pod or Service range makes replies to those nodes go to the peer.

        One sort and sweep per group (overlap_components), not every cluster against every peer: a
        group of a hundred clusters would otherwise take half a million range lists."""
        for group, members in sorted(self._members_by_group().items()):
            order = {cluster.name: position for position, cluster in enumerate(members)}
            items: t.List[t.Tuple[Network, t.Tuple[str, str, str, int]]] = []
            for cluster in members:
                for index, node_net in enumerate(self.networks.get(cluster.name, {}).get("node", [])):
                    items.append((node_net, ("node", cluster.name, "", index)))
                for index, (net, (_name, kind, _global)) in enumerate(self._effective(cluster)):
                    items.append((net, ("range", cluster.name, kind, index)))
            found = []
            for component in overlap_components(items):
                nodes = [(net, tag) for net, tag in component if tag[0] == "node"]
                ranges = [(net, tag) for net, tag in component if tag[0] == "range"]
                for node_net, node_tag in nodes:
                    for peer_net, peer_tag in ranges:
                        if node_tag[1] != peer_tag[1] and node_net.overlaps(peer_net):
                            found.append(((order[node_tag[1]], order[peer_tag[1]], node_tag[3], peer_tag[3]),
                                          node_net, node_tag[1], peer_net, peer_tag[1], peer_tag[2]))
            # reported in the order of the members, as a cluster-by-peer walk would find them
            for _key, node_net, name, peer_net, peer_name, kind in sorted(found, key=lambda entry: entry[0]):
                self.add("CIDR_NODE_OVERLAPS_PEER", ERROR, "cluster_node_cidrs", [name, peer_name],
                         "in network group %s, node network %s of cluster %s overlaps %s CIDR %s "
                         "of cluster %s; Pods and nodes of a group share one routed space."
                         % (group, node_net, name, kind, peer_net, peer_name),
                         "renumber the node network of %s or the %s range of %s, or move one of "
                         "them to another network group" % (name, kind.split()[0], peer_name),
                         group=group)

    def check_kosmos_reserved_ranges(self) -> None:
        """Kosmos ClusterLink routes through its own local and bridge CIDRs; network-manager silently
        skips a route that collides with them, so a cluster range inside them never connects."""
        for group, members in sorted(self._members_by_group().items()):
            if not all(c.cni == "kosmos" for c in members):
                continue
            for cluster in members:
                reserved = []
                for var, default in (("kosmos_local_cidrs", _kosmos.DEFAULT_LOCAL_CIDRS),
                                     ("kosmos_bridge_cidrs", _kosmos.DEFAULT_BRIDGE_CIDRS)):
                    spec = cluster.settings.get(var) or default
                    if not isinstance(spec, dict):
                        self.add("KOSMOS_RESERVED_INVALID", ERROR, var, [cluster.name],
                                 "%s of %s must be a mapping {ip: <IPv4 CIDR>, ip6: <IPv6 CIDR>}." % (var, cluster.name),
                                 "write it as %s" % default)
                        continue
                    for family in ("ip", "ip6"):
                        value = spec.get(family) or default[family]
                        try:
                            reserved.append((var, parse_cidr(value)))
                        except CidrError as err:
                            self.add("KOSMOS_RESERVED_INVALID", ERROR, "%s.%s" % (var, family), [cluster.name],
                                     "%s.%s of %s is %r: %s." % (var, family, cluster.name, value, err.reason), err.fix)
                own = [(kind, net) for kind, nets in self.networks.get(cluster.name, {}).items() for net in nets]
                own += [("global", net) for net in self.global_map.get(cluster.name, {}).values()]
                for kind, net in own:
                    for var, block in reserved:
                        if net.overlaps(block):
                            self.add("KOSMOS_RESERVED_OVERLAP", ERROR, "cluster_%s_cidrs" % kind, [cluster.name],
                                     "in network group %s (Kosmos), %s CIDR %s of cluster %s overlaps %s %s, which "
                                     "ClusterLink reserves for its own interfaces; its routes would be skipped."
                                     % (group, kind, net, cluster.name, var, block),
                                     "renumber the %s range of %s, or set %s for the whole group to a block no "
                                     "cluster uses" % (kind, cluster.name, var), group=group)

    def check_cilium_node_ports(self) -> None:
        """Each cluster of a Cilium group needs its own clustermesh-apiserver nodePort (the rule
        ``_cilium.node_port_problems`` the role's preflight applies too)."""
        prefix = "cilium_clustermesh_"
        for group, members in sorted(self._members_by_group().items()):
            if not all(c.cni == "cilium" for c in members):
                continue
            ports = {}
            for cluster in members:
                settings = {k[len(prefix):]: v for k, v in cluster.settings.items() if k.startswith(prefix)}
                if cluster.id_int() is None and settings.get("node_port") in (None, ""):
                    continue  # base + an ID chosen at install: the cilium stage's preflight checks that port
                try:
                    ports[cluster.name] = _cilium.clustermesh_node_port(settings, cluster.id_int())
                except _cilium.CiliumError as err:
                    low, high = _cilium.NODE_PORT_RANGE
                    self.add("CILIUM_NODE_PORT_INVALID", ERROR, "cilium_clustermesh_node_port", [cluster.name],
                             "cluster %s: %s." % (cluster.name, err), "set a port in %d-%d" % (low, high))
            for item in _cilium.node_port_problems(group, ports):
                involved = [self._named(name) for name in item.clusters]
                if item.code == "CILIUM_NODE_PORT_CLASH" and len({c.id_int() for c in involved}) == 1 and \
                        all(c.settings.get(prefix + "node_port") in (None, "") for c in involved):
                    continue  # base + one cluster_id twice: ID_DUPLICATE says so, with the fix
                self.problems.append(item)

    def check_cilium_datapath(self) -> None:
        """Pod traffic inside a Cilium group is never masqueraded (``_cilium.datapath``, which renders
        the values from the same inputs): one routing mode, and a native routing CIDR spanning the group."""
        prefix = "cilium_"
        for group, members in sorted(self._members_by_group().items()):
            if not all(c.cni == "cilium" for c in members):
                continue
            ranges = [(c.name, net) for c in members for net in self.networks.get(c.name, {}).get("pod", [])]
            settings = {c.name: {k[len(prefix):]: v for k, v in c.settings.items() if k.startswith(prefix)}
                        for c in members}
            self.problems.extend(_cilium.datapath_problems(group, settings, ranges))

    # ---- groups and the interconnect list -----------------------------------------------------
    def check_groups(self) -> None:
        clusters = list(self.topology.clusters.values())
        for cluster in clusters:
            group = cluster.network_group
            if group is None or group == "" or group == []:
                self.add("GROUP_MISSING", ERROR, "cluster_network_group", [cluster.name],
                         "cluster %s belongs to no network group." % cluster.name,
                         "set cluster_network_group to the group whose Pods reach this cluster's Pods by IP")
            elif not isinstance(group, str):
                self.add("GROUP_NOT_SINGLE", ERROR, "cluster_network_group", [cluster.name],
                         "cluster %s has cluster_network_group %r; a cluster is in exactly one group."
                         % (cluster.name, group),
                         "set cluster_network_group to one group name")
            elif not _DNS1123_LABEL.match(group) or len(group) > 63:
                self.add("GROUP_NAME_INVALID", ERROR, "cluster_network_group", [cluster.name],
                         "network group name %r is not a DNS-1123 label (it becomes the Istio network label)."
                         % group, "rename it, e.g. %r" % _suggest_label(group))
            if cluster.cni not in CNI_CHOICES:
                self.add("CNI_INVALID", ERROR, "cluster_cni", [cluster.name],
                         "cluster %s has cluster_cni %r." % (cluster.name, cluster.cni),
                         "set cluster_cni to one of %s" % ", ".join(CNI_CHOICES))
            self._check_gateway(cluster)
        for name, group in self.topology.groups().items():
            members = [c for c in clusters if c.network_group == name]
            cnis = sorted({str(c.cni) for c in members})
            if len(cnis) > 1:
                detail = "; ".join("%s: %s" % (cni, ", ".join(sorted(c.name for c in members if str(c.cni) == cni)))
                                   for cni in cnis)
                self.add("GROUP_MIXED_CNI", ERROR, "cluster_cni", group.clusters,
                         "network group %s mixes L3 techniques (%s); one group is connected by one technique."
                         % (name, detail),
                         "set the same cluster_cni for every cluster of %s, or split it into groups" % name,
                         group=name)
        self.check_interconnect()

    def _check_gateway(self, cluster: Cluster) -> None:
        spec = cluster.eastwest_gateway
        field = "cluster_eastwest_gateway"
        if not spec or not self._is_mapping(cluster, spec, field, "GATEWAY_INVALID", "a mapping",
                                            "{replicas: 1, service_type: LoadBalancer}"):
            return
        unknown = sorted(set(spec) - {"replicas", "service_type", "service_annotations", "address", "node_port"})
        if unknown:
            self.add("GATEWAY_INVALID", ERROR, field, [cluster.name],
                     "cluster_eastwest_gateway of %s has unknown keys %s." % (cluster.name, ", ".join(unknown)),
                     "use replicas, service_type, service_annotations, address, node_port")
        replicas = _as_int(spec.get("replicas", 1))
        if replicas is None or replicas < 1:
            self.add("GATEWAY_INVALID", ERROR, field + ".replicas", [cluster.name],
                     "east-west gateway replicas of %s is %r." % (cluster.name, spec.get("replicas")),
                     "set replicas to 1 or more (2 for availability)")
        service_type = spec.get("service_type") or "LoadBalancer"
        if service_type not in GATEWAY_SERVICE_TYPES:
            self.add("GATEWAY_INVALID", ERROR, field + ".service_type", [cluster.name],
                     "east-west gateway service_type of %s is %r." % (cluster.name, service_type),
                     "use LoadBalancer (cloud LB, the default) or NodePort")
        node_port = spec.get("node_port")
        if node_port is not None and (_as_int(node_port) is None or not 30000 <= _as_int(node_port) <= 32767):
            self.add("GATEWAY_INVALID", ERROR, field + ".node_port", [cluster.name],
                     "east-west gateway node_port of %s is %r." % (cluster.name, node_port),
                     "use a port in the default NodePort range 30000-32767, or leave it out")
        address = spec.get("address")
        if address:
            try:
                ipaddress.ip_address(str(address))
            except ValueError:
                if not re.match(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                                str(address)):
                    self.add("GATEWAY_INVALID", ERROR, field + ".address", [cluster.name],
                             "east-west gateway address of %s is %r, neither an IP nor a DNS name."
                             % (cluster.name, address),
                             "set address to the IP or DNS name peers reach the gateway at")

    # ---- the run sees the whole mesh ------------------------------------------------------------
    def check_whole_mesh(self) -> None:
        """A run must see every cluster of the mesh: the stages plan each cluster from its peers'
        facts. An AWX job slice (job_slice_count > 1) hands each job part of the inventory, which
        looks like a smaller mesh; ``mesh_clusters`` lets the run tell, before any change."""
        listed = self.topology.mesh_clusters
        if not listed:
            return
        bad = [entry for entry in listed if not isinstance(entry, str) or not entry]
        if bad:
            self.add("MESH_CLUSTERS_INVALID", ERROR, "mesh_clusters", [],
                     "mesh_clusters has entries that are not inventory host names: %s." % ", ".join(map(repr, bad)),
                     "list the inventory host names of every cluster, e.g. [cluster01, cluster02]")
            return
        present = set(self.topology.clusters)
        missing = sorted(set(listed) - present)
        if missing:
            self.add("MESH_CLUSTERS_MISSING", ERROR, "mesh_clusters", missing,
                     "this run sees %d of the %d clusters of mesh_clusters; %s %s not in its inventory. Stages "
                     "that connect clusters need every peer: a sliced AWX job (job_slice_count above 1) or an "
                     "inventory filter would plan a smaller mesh and disconnect the others."
                     % (len(set(listed) & present), len(set(listed)), ", ".join(missing),
                        "is" if len(missing) == 1 else "are"),
                     "run the job with job_slice_count 1 on the whole inventory; use --limit, which the run "
                     "checks per stage, to narrow what changes")
        unlisted = sorted(present - set(listed))
        if unlisted:
            self.add("MESH_CLUSTERS_UNLISTED", ERROR, "mesh_clusters", [self.topology.clusters[h].name for h in unlisted],
                     "%s %s in the clusters group but not in mesh_clusters." % (
                         ", ".join(unlisted), "is" if len(unlisted) == 1 else "are"),
                     "add them to mesh_clusters, or leave mesh_clusters unset")

    def check_interconnect(self) -> None:
        groups = self.topology.groups()
        seen: t.Set[str] = set()
        for entry in self.topology.interconnect_groups:
            if not isinstance(entry, str):
                self.add("INTERCONNECT_INVALID", ERROR, "interconnect_groups", [],
                         "interconnect_groups entry %r is not a group name." % (entry,),
                         "list network group names, e.g. [net-a, net-b]")
                continue
            if entry in seen:
                self.add("INTERCONNECT_DUPLICATE", ERROR, "interconnect_groups", [],
                         "group %s is listed twice in interconnect_groups." % entry, "list it once", group=entry)
                continue
            seen.add(entry)
            group = groups.get(entry)
            if group is None:
                self.add("INTERCONNECT_UNKNOWN_GROUP", ERROR, "interconnect_groups", [],
                         "interconnect_groups lists %s, but no cluster is in that network group (groups: %s)."
                         % (entry, ", ".join(groups) or "none"),
                         "fix the name, or set cluster_network_group: %s on its clusters" % entry, group=entry)
                continue
            if not group.gateway_clusters:
                self.add("INTERCONNECT_NO_GATEWAY", ERROR, "cluster_eastwest_gateway", group.clusters,
                         "network group %s is on the interconnect list but none of its clusters (%s) has an "
                         "east-west gateway, so other groups cannot reach it." % (entry, ", ".join(group.clusters)),
                         "set cluster_eastwest_gateway on at least one cluster of %s, or remove it from "
                         "interconnect_groups" % entry, group=entry)
        if len(seen) == 1:
            only = next(iter(seen))
            self.add("INTERCONNECT_SINGLE_GROUP", INFO, "interconnect_groups", [],
                     "only %s is on the interconnect list; it connects to no other group yet." % only, "",
                     group=only)


def _suggest_label(value: str) -> str:
    label = re.sub(r"[^a-z0-9-]+", "-", str(value).lower()).strip("-")[:NAME_MAX_LENGTH].strip("-")
    return label or "cluster-1"


def _free_ids(used: t.Mapping[int, t.Any], maximum: int, count: int) -> str:
    free = []
    for candidate in range(1, maximum + 1):
        if candidate not in used:
            free.append(str(candidate))
            if len(free) == max(count, 1):
                break
    return ", ".join(free) or "none (the mesh is full)"


def validate(topology: Topology) -> Report:
    """Every problem of the topology at once; the report's ``ok`` says whether changes may proceed."""
    checker = _Checker(topology)
    checker.check_names()
    checker.check_ids()
    checker.check_cidrs()
    checker.check_groups()
    checker.check_overlaps_between_clusters()
    checker.check_node_ranges_in_groups()
    checker.check_kosmos_reserved_ranges()
    checker.check_cilium_node_ports()
    checker.check_cilium_datapath()
    checker.check_whole_mesh()
    return Report(topology, checker.problems)


def validate_inventory(
    cluster_vars: t.Mapping[str, t.Mapping[str, t.Any]], interconnect_groups: t.Any = None,
    mesh_clusters: t.Any = None,
) -> Report:
    return validate(topology_from_inventory(cluster_vars, interconnect_groups, mesh_clusters))
