"""The values the cilium role renders, through `helm template` of both chart generations the lab exports.

Chart 1.20.2 (the role's default, from the cilium/cilium module) reads clustermesh.config.clusters
as a map; charts before 1.19 (1.18.7 from cilium/charts) only as a list. For each, the rendered
`cilium-kvstoremesh` and `cilium-clustermesh` Secrets must name exactly the peers of the group,
at their port, with the peer IPs the chart resolves the peer name to.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess

import pytest
import yaml

from ansible_collections.multicloud.interconnect.plugins.module_utils import _cilium as c
from ansible_collections.multicloud.interconnect.plugins.module_utils._topology import cluster_from_vars

pytestmark = pytest.mark.lab

SETTINGS = {"service_type": "NodePort", "node_port_base": 32000, "max_connected_clusters": 255,
            "ipam_mode": "cluster-pool", "pod_cidrs": ["10.244.0.0/16"]}


def nodes(i):
    return [{"status": {"addresses": [{"type": "InternalIP", "address": "172.30.%d.1%d" % (i, k)}]}} for k in range(2)]


def members():
    return [c.member(cluster_from_vars("cluster%02d" % i, {"cluster_id": i, "cluster_network_group": "net-a"}),
                     SETTINGS, nodes(i), None) for i in (1, 2, 3)]


MESH_SECRETS = ("templates/clustermesh-config/kvstoremesh-secret.yaml",
                "templates/clustermesh-config/clustermesh-secret.yaml")


def template(lab, chart_dir, values, expect=0, show=MESH_SECRETS):
    path = lab.state_dir / ("values-%s.json" % os.path.basename(chart_dir))
    path.write_text(json.dumps(values))
    shown = [arg for template_path in show for arg in ("--show-only", template_path)]
    run = subprocess.run([str(lab.bin_dir / "helm"), "template", "cilium", str(chart_dir), "-n", "kube-system",
                          "-f", str(path)] + shown, text=True, capture_output=True, timeout=120, check=False)
    assert run.returncode == expect, run.stderr[-3000:]
    if expect:
        return run.stderr
    return {d["metadata"]["name"]: d for d in yaml.safe_load_all(run.stdout) if d}


@pytest.mark.parametrize("chart, version, fmt", [("cilium", "1.20.2", "map"), ("cilium-1.18.7", "1.18.7", "list")])
def test_peers_reach_the_rendered_secrets(lab, chart, version, fmt):
    chart_dir = lab.bin_dir.parent / "charts" / chart
    assert yaml.safe_load((chart_dir / "Chart.yaml").read_text())["version"] == version
    mesh = members()
    rendered = c.render(mesh[0], mesh, SETTINGS, None, None, version)
    assert rendered["format"] == fmt
    secrets = template(lab, chart_dir, rendered["values"])
    kvstoremesh = {k: base64.b64decode(v).decode() for k, v in (secrets["cilium-kvstoremesh"].get("data") or {}).items()}
    peers = {k: yaml.safe_load(v) for k, v in kvstoremesh.items() if "endpoints:" in v}
    assert sorted(peers) == ["cluster02", "cluster03"]
    assert peers["cluster02"]["endpoints"] == ["https://cluster02.mesh.cilium.io:32002"]
    if fmt == "map":
        # 1.20 carries the peer IPs in the file; 1.18 put them in the Deployment's hostAliases.
        assert peers["cluster03"]["cilium-host-aliases"] == [
            {"hostname": "cluster03.mesh.cilium.io", "ips": ["172.30.3.10", "172.30.3.11"]}]
    agents = secrets["cilium-clustermesh"].get("data") or {}
    assert {k for k in agents if "." not in k} >= {"cluster02", "cluster03"}


def test_the_older_chart_refuses_the_map_format(lab):
    """Why the role renders by chart version: chart 1.18.7's schema wants the list."""
    mesh = members()
    values = c.render(mesh[0], mesh, SETTINGS, None, None, "1.20.2")["values"]
    error = template(lab, lab.bin_dir.parent / "charts" / "cilium-1.18.7", values, expect=1)
    assert "/clustermesh/config/clusters" in error and "want array" in error


def datapath_members(settings):
    return [c.member(cluster_from_vars("cluster%02d" % i, {"cluster_id": i, "cluster_network_group": "net-a",
                                                           "cluster_pod_cidrs": [cidr]}),
                     settings, nodes(i), None) for i, cidr in ((1, "10.244.0.0/16"), (2, "10.245.0.0/16"))]


@pytest.mark.parametrize("routing, expected", [
    ({}, {"routing-mode": "tunnel"}),
    ({"routing_mode": "native"}, {"routing-mode": "native", "ipv4-native-routing-cidr": "10.244.0.0/15"}),
    ({"routing_mode": "native", "ip_masq_agent": True},
     {"routing-mode": "native", "ipv4-native-routing-cidr": "10.244.0.0/15", "enable-ip-masq-agent": "true",
      "enable-bpf-masquerade": "true"}),
])
def test_pod_traffic_to_the_group_is_not_masqueraded_in_the_rendered_agent_config(lab, routing, expected):
    """What cilium-agent reads (cilium-config, ip-masq-agent) from the values the role renders."""
    settings = dict(SETTINGS, **routing)
    mesh = datapath_members(settings)
    values = c.render(mesh[0], mesh, settings, None, None, "1.20.2")["values"]
    rendered = template(lab, lab.bin_dir.parent / "charts" / "cilium", values, show=("templates/cilium-configmap.yaml",))
    config = rendered["cilium-config"]["data"]
    assert {key: config.get(key) for key in expected} == expected
    if routing.get("ip_masq_agent"):
        agent = json.loads(rendered["ip-masq-agent"]["data"]["config"])
        assert agent["nonMasqueradeCIDRs"] == ["10.244.0.0/16", "10.245.0.0/16"]
    else:
        assert "ip-masq-agent" not in rendered and config.get("enable-ip-masq-agent") is None
