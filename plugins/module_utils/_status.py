# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The status report: what the inventory expects, what the clusters show, and the drift between.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

Pure: the module gathers ``Observed`` per cluster from the API; everything here compares,
tabulates and draws. The drawing is a hand-written SVG, so no plotting library is needed.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import tempfile
import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils._ca_rotation import trust_mismatches
from ansible_collections.multicloud.interconnect.plugins.module_utils._runtime import (
    CONNECTED,
    NOT_CONNECTED,
    UNKNOWN,
    compare_names,
    link_state,
    verdict,
)
from ansible_collections.multicloud.interconnect.plugins.module_utils._topology import Topology

# Annotations and labels the upstream projects use; the status reads what Cilium, Kosmos and Istio load.
ISTIO_CLUSTER_ANNOTATION = "networking.istio.io/cluster"


@dataclasses.dataclass
class Observed:
    """What one cluster's API showed. ``None`` means "not read" (unreachable, or not installed)."""

    reachable: bool = True
    error: t.Optional[str] = None
    version: t.Optional[str] = None
    cilium_cluster_name: t.Optional[str] = None
    cilium_cluster_id: t.Optional[str] = None
    cilium_peers: t.Optional[t.List[str]] = None
    cilium_ca_fingerprint: t.Optional[str] = None
    cilium_ca_trust: t.Optional[t.List[str]] = None  # CA fingerprints it trusts (bundle, else cilium-ca's certificates)
    kosmos_clusters: t.Optional[t.Dict[str, str]] = None  # member name -> network type (read on the host)
    istio_remote_secrets: t.Optional[t.List[str]] = None  # cluster names in istio-remote-secret-* objects
    gateway_addresses: t.Optional[t.List[str]] = None
    # What the components report (None: not read, the reason says why): remote cluster -> state.
    kvstoremesh_remotes: t.Optional[t.Dict[str, bool]] = None
    kvstoremesh_reason: t.Optional[str] = None
    istiod_remotes: t.Optional[t.Dict[str, str]] = None
    istiod_reason: t.Optional[str] = None

    @classmethod
    def from_dict(cls, data: t.Mapping[str, t.Any]) -> "Observed":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


def build_status(topology: Topology, observed: t.Mapping[str, Observed]) -> t.Dict[str, t.Any]:
    """Per cluster and per group: technique, IDs, CIDRs, peers expected/configured/missing, drift."""
    groups = topology.groups()
    joined = [g for g in topology.interconnect_groups if g in groups]
    kosmos_seen: t.Dict[str, t.Dict[str, str]] = {}
    for group in groups.values():
        if group.cni == "kosmos":
            merged: t.Dict[str, str] = {}
            for name in group.clusters:
                seen = observed.get(name)
                if seen and seen.kosmos_clusters:
                    merged.update(seen.kosmos_clusters)
            kosmos_seen[group.name] = merged
    clusters: t.Dict[str, t.Any] = {}
    for cluster in sorted(topology.clusters.values(), key=lambda c: c.name):
        seen = observed.get(cluster.name) or Observed(reachable=False, error="not observed")
        group = groups.get(cluster.network_group)
        peers = topology.peers(cluster.inventory_name)
        entry: t.Dict[str, t.Any] = {
            "group": cluster.network_group,
            "technique": cluster.cni,
            "cluster_id": cluster.id_int(),
            "cluster_id_source": "inventory" if cluster.id_int() is not None else None,
            "pod_cidrs": [str(c) for c in cluster.pod_cidrs],
            "service_cidrs": [str(c) for c in cluster.service_cidrs],
            "reachable": seen.reachable,
            "error": seen.error,
            "version": seen.version,
            "drift": [],
        }
        if not seen.reachable:
            entry["drift"].append("unreachable: %s" % (seen.error or "unknown"))
        entry["connection"] = {}
        if cluster.cni == "cilium":
            entry["connection"]["cilium"] = verdict(
                "kvstoremesh", peers, seen.kvstoremesh_remotes,
                seen.kvstoremesh_reason if seen.reachable else "cluster unreachable: %s" % seen.error)
            entry["l3"] = compare_names(peers, seen.cilium_peers)
            entry["cilium"] = {"cluster_name": seen.cilium_cluster_name, "cluster_id": seen.cilium_cluster_id,
                               "ca_fingerprint": seen.cilium_ca_fingerprint,
                               "ca_trust": list(seen.cilium_ca_trust or [])}
            if seen.reachable:
                if seen.cilium_cluster_name is None:
                    entry["drift"].append("Cilium not installed")
                else:
                    if seen.cilium_cluster_name != cluster.name:
                        entry["drift"].append("cilium-config cluster-name is %s" % seen.cilium_cluster_name)
                    if cluster.id_int() is None:
                        # no cluster_id in the inventory: the ID the cilium stage kept or allocated
                        entry["cluster_id"], entry["cluster_id_source"] = seen.cilium_cluster_id, "allocated"
                    elif str(seen.cilium_cluster_id) != str(cluster.id_int()):
                        entry["drift"].append("cilium-config cluster-id is %s" % seen.cilium_cluster_id)
        elif cluster.cni == "kosmos" and group is not None:
            members = kosmos_seen.get(group.name, {})
            entry["l3"] = compare_names(group.clusters, list(members) if members else None)
            entry["kosmos"] = {"network_type": members.get(cluster.name)}
            if seen.reachable and cluster.name not in members:
                entry["drift"].append("not joined to ClusterLink")
        else:
            entry["l3"] = None
        if cluster.network_group in joined:
            expected_remote = sorted(
                c.name for c in topology.clusters.values()
                if c.network_group in joined and c.network_group != cluster.network_group
            )
        else:
            expected_remote = []
        entry["remote_secrets"] = compare_names(expected_remote, seen.istio_remote_secrets)
        if expected_remote or seen.istiod_remotes:
            entry["connection"]["istio"] = verdict(
                "istiod", expected_remote, seen.istiod_remotes,
                seen.istiod_reason if seen.reachable else "cluster unreachable: %s" % seen.error, good="synced")
        entry["gateway_addresses"] = seen.gateway_addresses or []
        for key, label in (("l3", "peer"), ("remote_secrets", "remote secret")):
            part = entry.get(key)
            if not part or not seen.reachable:
                continue
            for name in part["missing"]:
                if key == "l3" and cluster.cni == "kosmos":
                    continue
                entry["drift"].append("missing %s %s" % (label, name))
            for name in part["stale"]:
                entry["drift"].append("stale %s %s" % (label, name))
        clusters[cluster.name] = entry

    group_rows: t.Dict[str, t.Any] = {}
    for name, group in groups.items():
        cas = {c: {"issuer": clusters[c]["cilium"]["ca_fingerprint"],
                   "trust": clusters[c]["cilium"]["ca_trust"] or [clusters[c]["cilium"]["ca_fingerprint"]]}
               for c in group.clusters if "cilium" in clusters[c] and clusters[c]["cilium"]["ca_fingerprint"]}
        # shared: each cluster trusts the CA that issues every other's certificates (one CA, or the
        # old and the new one while a rotation is under way)
        untrusted = trust_mismatches(cas)
        group_rows[name] = {
            "clusters": list(group.clusters),
            "technique": group.cni,
            "interconnected": name in joined,
            "eastwest_gateways": list(group.gateway_clusters),
            "gateway_addresses": sorted({a for c in group.clusters for a in clusters[c]["gateway_addresses"]}),
            "shared_ca": (not any(untrusted.values())) if group.cni == "cilium" and cas else None,
            "healthy": all(not clusters[c]["drift"] for c in group.clusters),
        }
        if group.cni == "cilium" and any(untrusted.values()):
            for c in group.clusters:
                clusters[c]["drift"].append("Cilium CA differs within %s" % name)
            group_rows[name]["healthy"] = False
    links = _links(topology, clusters, group_rows)
    states = [link["connection"] for link in links if link.get("connection")]
    return {
        "clusters": clusters,
        "groups": group_rows,
        "interconnect_groups": joined,
        "links": links,
        # What the components report: True when every link they can speak for is connected,
        # False when one is not, None when one could not be read (and none is known to be down).
        "connected": (False if NOT_CONNECTED in states else None if UNKNOWN in states else True) if states else None,
        "healthy": all(not c["drift"] for c in clusters.values()) and NOT_CONNECTED not in states,
    }


def _links(topology: Topology, clusters: t.Mapping[str, t.Any], groups: t.Mapping[str, t.Any]) -> t.List[t.Dict]:
    links = []
    for name, group in groups.items():
        members = group["clusters"]
        for index, left in enumerate(members):
            for right in members[index + 1:]:
                if not group["technique"] or group["technique"] == "none":
                    continue
                ok = _peer_ok(clusters[left], right) and _peer_ok(clusters[right], left)
                link = {"from": left, "to": right, "group": name, "technique": group["technique"],
                        "status": "ok" if ok else "drift"}
                if group["technique"] == "cilium":
                    # The status is the components' verdict where they report one: objects that
                    # are all in place do not make a link that kvstoremesh says is down "ok".
                    state, reason = link_state((clusters[left]["connection"].get("cilium"), right),
                                               (clusters[right]["connection"].get("cilium"), left))
                    link.update(connection=state, reason=reason)
                    if ok:
                        link["status"] = "ok" if state == CONNECTED else state
                links.append(link)
    joined = [g for g in topology.interconnect_groups if g in groups]
    for index, left in enumerate(joined):
        for right in joined[index + 1:]:
            ok = all(not clusters[c]["remote_secrets"]["missing"] for c in groups[left]["clusters"] + groups[right]["clusters"])
            sides = [(clusters[a]["connection"].get("istio"), b)
                     for here, there in ((left, right), (right, left))
                     for a in groups[here]["clusters"] for b in groups[there]["clusters"]]
            state, reason = link_state(*sides)
            links.append({"from": left, "to": right, "group": None, "technique": "istio east-west",
                          "status": ("ok" if state == CONNECTED else state) if ok else "drift",
                          "connection": state, "reason": reason})
    return links


def _peer_ok(entry: t.Mapping[str, t.Any], peer: str) -> bool:
    part = entry.get("l3")
    if not part or part.get("configured") is None:
        return False
    if entry.get("technique") == "kosmos":
        return peer in part["configured"]
    return peer not in part["missing"]


def render_table(status: t.Mapping[str, t.Any]) -> t.List[str]:
    header = ("CLUSTER", "GROUP", "TECHNIQUE", "ID", "POD CIDRS", "PEERS OK/EXPECTED", "REMOTE SECRETS", "GATEWAY",
              "CONNECTED (COMPONENT)", "DRIFT")
    rows = [header]
    for name, entry in status["clusters"].items():
        l3 = entry.get("l3")
        if l3 is None:
            peers = "-"
        elif entry["technique"] == "kosmos":
            configured = l3["configured"] or []
            peers = "%d/%d joined" % (len([c for c in l3["expected"] if c in configured]), len(l3["expected"]))
        else:
            peers = "%d/%d" % (len(l3["expected"]) - len(l3["missing"]), len(l3["expected"]))
        secrets = entry["remote_secrets"]
        rows.append((
            name,
            str(entry["group"]),
            str(entry["technique"]),
            "-" if entry["cluster_id"] is None else str(entry["cluster_id"]) + (
                "*" if entry.get("cluster_id_source") == "allocated" else ""),
            ",".join(entry["pod_cidrs"]),
            peers,
            "%d/%d" % (len(secrets["expected"]) - len(secrets["missing"]), len(secrets["expected"])),
            ",".join(entry["gateway_addresses"]) or "-",
            _connection_cell(entry.get("connection") or {}),
            "; ".join(entry["drift"]) or "none",
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    if any(e.get("cluster_id_source") == "allocated" for e in status["clusters"].values()):
        lines.append("* cluster ID set by the cilium stage (no cluster_id in the inventory)")
    lines.append("")
    for name, group in status["groups"].items():
        lines.append("group %s: %s, clusters %s, interconnected: %s, gateways: %s, %s" % (
            name, group["technique"], ", ".join(group["clusters"]), "yes" if group["interconnected"] else "no",
            ", ".join(group["gateway_addresses"]) or "none", "healthy" if group["healthy"] else "DRIFT"))
    for link in status["links"]:
        if link.get("connection") and link["connection"] != CONNECTED:
            lines.append("link %s - %s (%s): %s: %s" % (
                link["from"], link["to"], link["technique"], link["connection"], link.get("reason") or ""))
    connected = status.get("connected")
    lines.append("overall: %s; components report: %s" % (
        "healthy" if status["healthy"] else "DRIFT (see the DRIFT column and the links above)",
        {True: "every link connected", False: "a link NOT CONNECTED", None: "unknown for some links"}[connected]))
    return lines


def _connection_cell(connection: t.Mapping[str, t.Any]) -> str:
    """``kvstoremesh 1/1, istiod 2/2``; ``istiod ?`` when it could not be read."""
    cells = []
    for key in ("cilium", "istio"):
        item = connection.get(key)
        if not item:
            continue
        if item["state"] == UNKNOWN:
            cells.append("%s ?" % item["component"])
        else:
            cells.append("%s %d/%d" % (item["component"], len(item["connected"]), len(item["expected"])))
    return ", ".join(cells) or "-"


def render_svg(status: t.Mapping[str, t.Any], note: str = "") -> str:
    """Groups as boxes with their clusters inside; links labelled with technique and status."""
    groups = list(status["groups"].items())
    box_w, box_gap, node_h, node_gap, pad = 300, 160, 46, 24, 20
    max_nodes = max([len(g["clusters"]) for _n, g in groups] or [1])
    box_h = pad * 2 + 30 + max_nodes * node_h + (max_nodes - 1) * node_gap
    width = pad * 2 + len(groups) * box_w + max(len(groups) - 1, 0) * box_gap
    height = box_h + 120
    esc = html.escape
    out = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
        'font-family="sans-serif" font-size="13">' % (width, height, width, height),
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        '<text x="%d" y="24" font-size="16" font-weight="bold">multicloud.interconnect: %s</text>'
        % (pad, "healthy" if status["healthy"] else "drift detected"),
    ]
    node_pos: t.Dict[str, t.Tuple[int, int]] = {}
    group_pos: t.Dict[str, t.Tuple[int, int]] = {}
    for index, (name, group) in enumerate(groups):
        x = pad + index * (box_w + box_gap)
        y = 50
        colour = "#2e7d32" if group["healthy"] else "#c62828"
        out.append('<rect x="%d" y="%d" width="%d" height="%d" rx="10" fill="#f5f7fa" stroke="%s" stroke-width="2"/>'
                   % (x, y, box_w, box_h, colour))
        out.append('<text x="%d" y="%d" font-weight="bold">%s (%s)</text>'
                   % (x + 12, y + 22, esc(name), esc(str(group["technique"]))))
        group_pos[name] = (x + box_w, y + box_h // 2)
        for slot, cluster in enumerate(group["clusters"]):
            entry = status["clusters"][cluster]
            ny = y + 40 + slot * (node_h + node_gap)
            fill = "#e8f5e9" if not entry["drift"] else "#ffebee"
            out.append('<rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="%s" stroke="#555"/>'
                       % (x + 56, ny, box_w - 96, node_h, fill))
            label = "%s  id %s" % (cluster, "-" if entry["cluster_id"] is None else entry["cluster_id"])
            out.append('<text x="%d" y="%d">%s</text>' % (x + 68, ny + 19, esc(label)))
            out.append('<text x="%d" y="%d" font-size="11" fill="#444">%s</text>'
                       % (x + 68, ny + 36, esc(", ".join(entry["pod_cidrs"]))))
            node_pos[cluster] = (x + 56, ny + node_h // 2)
    for link in status["links"]:
        # green: connected as the components report it; grey: they could not be read; red: drift or down
        colour = {"ok": "#2e7d32", UNKNOWN: "#757575"}.get(link["status"], "#c62828")
        if link["group"]:
            (x1, y1), (_x2, y2) = node_pos[link["from"]], node_pos[link["to"]]
            out.append('<path d="M %d %d C %d %d, %d %d, %d %d" fill="none" stroke="%s" stroke-width="2"/>'
                       % (x1, y1, x1 - 24, y1, x1 - 24, y2, x1, y2, colour))
            mid = (y1 + y2) // 2
            out.append('<text x="%d" y="%d" font-size="10" fill="%s" text-anchor="middle" '
                       'transform="rotate(-90 %d %d)">%s %s</text>'
                       % (x1 - 30, mid, colour, x1 - 30, mid, esc(link["technique"]), esc(link["status"])))
        else:
            (x1, y1) = group_pos[link["from"]]
            names = [n for n, _g in groups]
            left_index, right_index = names.index(link["from"]), names.index(link["to"])
            x2 = pad + right_index * (box_w + box_gap)
            if right_index - left_index > 1:
                # Skip over the boxes in between with an arc under them.
                x1 -= box_w // 2
                x2 += box_w // 2
                y1 = 50 + box_h
                out.append('<path d="M %d %d C %d %d, %d %d, %d %d" fill="none" stroke="%s" stroke-width="3" '
                           'stroke-dasharray="8 4"/>' % (x1, y1, x1, y1 + 60, x2, y1 + 60, x2, y1, colour))
                y1 += 40
            else:
                out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3" stroke-dasharray="8 4"/>'
                           % (x1, y1, x2, y1, colour))
            out.append('<text x="%d" y="%d" font-size="11" fill="%s" text-anchor="middle">%s</text>'
                       % ((x1 + x2) // 2, y1 - 8, colour, esc("%s :15443" % link["technique"])))
            out.append('<text x="%d" y="%d" font-size="11" fill="%s" text-anchor="middle">%s</text>'
                       % ((x1 + x2) // 2, y1 + 18, colour, esc(link["status"])))
    legend = "green: configured as the inventory says; red: drift. " + note
    out.append('<text x="%d" y="%d" font-size="11" fill="#666">%s</text>' % (pad, height - 16, esc(legend.strip())))
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---- the files of the report -----------------------------------------------------------------------

def report_files(status: t.Mapping[str, t.Any], svg: str) -> t.Dict[str, str]:
    return {"status.json": json.dumps(status, indent=4, sort_keys=True) + "\n", "topology.svg": svg}


def write_files(directory: str, files: t.Mapping[str, str], check_mode: bool) -> t.List[str]:
    """The paths whose content differs, written (not in check mode) through a temporary file, mode 0644."""
    written = []
    for name, content in sorted(files.items()):
        path = os.path.join(directory, name)
        try:
            with open(path, encoding="utf-8") as handle:
                if handle.read() == content:
                    continue
        except OSError:
            pass
        written.append(path)
        if check_mode:
            continue
        os.makedirs(directory, mode=0o755, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix="." + name)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    return written
