"""The meshes' own control planes read what the roles wrote, and say whether the clusters connect.

On the lab, the clustermesh-apiserver Pods (etcd, clustermesh, kvstoremesh) and the istiod Pods
run the real binaries with the arguments, environment and mounted Secrets/ConfigMaps of the Pod
specs the charts rendered (tools/lab/podrunner.py). These tests ask those components, the way an
operator would with ``kubectl exec``: kvstoremesh-dbg, etcdctl against the clustermesh etcd,
istiod's /debug/clusterz, and an xDS client asking as a proxy of one network. Each breakage is
made the way it happens to users (a hand-made ``helm upgrade --reuse-values --set``, a CA
installed separately, a group left), must make the component report "not connected" and the
status report say so, and is repaired before the test ends.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import subprocess
import time

import pytest
from site_helpers import REPO, core, run_site  # pylint: disable=import-error

pytestmark = pytest.mark.lab

KUBE_SYSTEM, ISTIO_NS = "kube-system", "istio-system"
ECHO_NS, ECHO = "mci-echo", "echo.mci-echo.svc.cluster.local"
ECHO_RESOURCE = "outbound|80||" + ECHO


def when(value, ok):
    """``value`` if ``ok(value)``, else None: what wait_for waits on."""
    return value if ok(value) else None


def wait_for(pred, timeout: float, what: str, interval: float = 2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("%s: not within %.0fs (last: %r)" % (what, timeout, last))


# ---- asking the components ------------------------------------------------------------------------

def kvstoremesh(lab, cluster) -> dict:
    """``kvstoremesh-dbg status -o json`` in the clustermesh-apiserver Pod: remote name -> its entry."""
    run = lab.in_pod(cluster, "kube-system/clustermesh-apiserver-", str(lab.bin_dir / "clustermesh-apiserver"),
                     "kvstoremesh-dbg", "status", "-o", "json", "-H", "localhost:9889")
    if run.returncode != 0:
        return {"error": run.stderr.strip()}
    return {entry["name"]: entry for entry in json.loads(run.stdout)}


def ready(lab, cluster, peer) -> bool:
    return bool(kvstoremesh(lab, cluster).get(peer, {}).get("ready"))


def reports_not_ready(lab, cluster, peer) -> bool:
    """kvstoremesh of ``cluster`` answered and says ``peer`` is not ready.

    Not the same as ``not ready()``: a Pod whose process is still starting cannot be asked, and
    that is no verdict (the status report calls it unknown).
    """
    remotes = kvstoremesh(lab, cluster)
    return "error" not in remotes and not remotes.get(peer, {}).get("ready")


def clustermesh_etcd(lab, cluster, *etcdctl_args) -> str:
    """etcdctl against the Pod's own etcd, with the admin client certificate the chart mounts."""
    pod = lab.real_pod(cluster, "kube-system/clustermesh-apiserver-")
    pod_dir = next((lab.state_dir / cluster / "pods").glob("kube-system_%s_*" % pod["pod"].split("/", 1)[1]))
    certs = pod_dir / "volumes" / "etcd-admin-client"
    run = lab.in_pod(cluster, "kube-system/clustermesh-apiserver-", str(lab.bin_dir / "etcdctl"),
                     "--endpoints=https://127.0.0.1:2379", "--cacert=%s" % (certs / "ca.crt"),
                     "--cert=%s" % (certs / "tls.crt"), "--key=%s" % (certs / "tls.key"), *etcdctl_args)
    assert run.returncode == 0, run.stderr
    return run.stdout


def clusterz(lab, cluster) -> dict:
    """istiod's /debug/clusterz (it answers loopback callers): remote cluster ID -> sync status."""
    code = ("import json,urllib.request;print(json.dumps(json.load(urllib.request.urlopen("
            "'http://127.0.0.1:8080/debug/clusterz', timeout=10))))")
    run = lab.in_pod(cluster, "istio-system/istiod-", "python3", "-c", code)
    if run.returncode != 0:
        return {"error": run.stderr.strip()[-300:]}
    return {c["id"]: c.get("syncStatus") for c in json.loads(run.stdout) or [] if c["id"] != cluster}


def forgot(remotes: dict, clusters: set) -> bool:
    """istiod answered and none of ``clusters`` is a remote cluster any more (an empty answer counts)."""
    return "error" not in remotes and not clusters & set(remotes)


def eds(lab, cluster, network, resource=ECHO_RESOURCE) -> set:
    """Endpoints istiod of ``cluster`` sends a sidecar of ``network`` in that cluster: {(address, port)}."""
    pod = lab.real_pod(cluster, "istio-system/istiod-")
    run = lab.in_netns(str(lab.bin_dir / "xds-probe"), "-addr", "%s:15010" % pod["ip"], "-network", network,
                       "-cluster", cluster, "-resource", resource)
    assert run.returncode == 0, run.stderr
    return {(e["address"], e["port"]) for e in json.loads(run.stdout)["endpoints"]}


def status_report(tmp_path, *inventories) -> dict:
    out = tmp_path / ("status-%d" % time.monotonic_ns())
    run_site(out, inventories=inventories or ("inventories/lab",), playbook="playbooks/status.yml")
    return json.loads((out / "status.json").read_text())


def link(status, left, right) -> dict:
    return next(x for x in status["links"] if (x["from"], x["to"]) == (left, right))


# ---- the lab's tools ----------------------------------------------------------------------------

def helm(lab, cluster, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, KUBECONFIG=lab.clusters[cluster].kubeconfig)
    run = subprocess.run([str(lab.bin_dir / "helm"), *args], env=env, text=True, capture_output=True, timeout=600,
                         check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def cilium_chart(lab) -> str:
    return str(lab.bin_dir.parent / "charts" / "cilium")


def release_revision(lab, cluster, release="cilium", namespace=KUBE_SYSTEM) -> int:
    return json.loads(helm(lab, cluster, "status", release, "-n", namespace, "-o", "json").stdout)["version"]


def restart(lab, cluster, deployment, namespace=KUBE_SYSTEM) -> None:
    """``kubectl rollout restart``: the Pod comes back with the certificates the Secrets hold now."""
    from kubernetes import client
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat()
    client.AppsV1Api(lab.clusters[cluster].api_client()).patch_namespaced_deployment(
        deployment, namespace, {"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": stamp}}}}})


def metrics_report(lab, cluster):
    """Remote cluster -> ready as the status report reads it (kvstoremesh's metrics through the pod
    proxy), or None while they cannot be read (a Pod just started listens on its metrics port last)."""
    from ansible_collections.multicloud.interconnect.plugins.module_utils._kube_api import connect
    from ansible_collections.multicloud.interconnect.plugins.module_utils._runtime_k8s import kvstoremesh_report
    return kvstoremesh_report(connect(cluster, lab.clusters[cluster].kubeconfig, timeout=10), KUBE_SYSTEM)[0]


def both_read_one_refuses(lab, left, right) -> bool:
    """Both kvstoremesh metrics answer and at least one side reports the other not ready."""
    here, there = metrics_report(lab, left), metrics_report(lab, right)
    return here is not None and there is not None and not (here.get(right) and there.get(left))


def new_ca_pem() -> tuple[str, str]:
    """A CA of its own, as a cluster installed separately would have (base64 PEM cert and key)."""
    from unit.plugins.module_utils.test_ca_rotation import make_ca  # pylint: disable=import-error,import-outside-toplevel
    ca = make_ca("Cilium CA")
    return ca["cert"], ca["key"]


# ---- Cilium -------------------------------------------------------------------------------------

def test_kvstoremesh_of_each_cluster_reports_the_other_ready(lab, site_converged):
    for here, peer, peer_id in (("cluster01", "cluster02", 2), ("cluster02", "cluster01", 1)):
        entry = wait_for(lambda h=here, p=peer: kvstoremesh(lab, h).get(p, {}).get("ready") and kvstoremesh(lab, h)[p],
                         120, "%s's kvstoremesh reports %s ready" % (here, peer))
        assert entry["config"]["cluster-id"] == peer_id
        assert entry["num-nodes"] == 3, entry
        assert set(kvstoremesh(lab, here)) == {peer}


def test_cluster01_kvstore_holds_cluster02_nodes_with_cluster_id_2(lab, site_converged):
    out = clustermesh_etcd(lab, "cluster01", "get", "--prefix", "cilium/cache/nodes/v1/cluster02/")
    lines = out.splitlines()
    nodes = {json.loads(v)["Name"]: json.loads(v) for v in lines[1::2]}
    assert sorted(nodes) == ["cluster02-control-plane", "cluster02-worker", "cluster02-worker2"]
    assert {n["ClusterID"] for n in nodes.values()} == {2}
    assert {n["Cluster"] for n in nodes.values()} == {"cluster02"}
    assert nodes["cluster02-worker"]["IPAddresses"][0]["IP"] == "172.30.2.11"


def test_status_report_reads_the_components(site_converged):
    out = site_converged[0]
    status = json.loads((out / "status.json").read_text())
    assert status["connected"] is True, status["links"]
    assert link(status, "cluster01", "cluster02")["connection"] == "connected"
    assert status["clusters"]["cluster02"]["connection"]["cilium"]["reported"] == {"cluster01": True}


def test_a_peer_entry_with_a_wrong_port_disconnects_and_cilium_mesh_repairs_it(lab, site_converged, tmp_path):
    values = json.loads(helm(lab, "cluster01", "get", "values", "cilium", "-n", KUBE_SYSTEM, "-o", "json").stdout)
    port = values["clustermesh"]["config"]["clusters"]["cluster02"]["port"]
    try:
        # What a hand-made upgrade does to a peer list (cilium/cilium#35975 is the reverse case).
        helm(lab, "cluster01", "upgrade", "cilium", cilium_chart(lab), "-n", KUBE_SYSTEM, "--reuse-values",
             "--set", "clustermesh.config.clusters.cluster02.port=%d" % (port + 7))
        wait_for(lambda: reports_not_ready(lab, "cluster01", "cluster02"), 120, "cluster01's kvstoremesh drops cluster02")
        entry = kvstoremesh(lab, "cluster01")["cluster02"]
        assert not entry.get("connected") and not entry.get("ready"), entry
        status = status_report(tmp_path)
        bad = link(status, "cluster01", "cluster02")
        assert (bad["status"], bad["connection"]) == ("not connected", "not connected"), bad
        assert "kvstoremesh reports cluster02 not ready" in bad["reason"]
        assert status["connected"] is False and status["healthy"] is False
        # The objects alone still look right: only the component's verdict shows the break.
        assert status["clusters"]["cluster01"]["l3"]["missing"] == []
    finally:
        run_site(tmp_path / "repair", playbook="playbooks/cilium_mesh.yml")
    assert wait_for(lambda: ready(lab, "cluster01", "cluster02"), 120, "cluster01's kvstoremesh reconnects")
    values = json.loads(helm(lab, "cluster01", "get", "values", "cilium", "-n", KUBE_SYSTEM, "-o", "json").stdout)
    assert values["clustermesh"]["config"]["clusters"]["cluster02"]["port"] == port


def test_a_cluster_with_another_ca_is_not_connected(lab, site_converged, tmp_path):
    before = release_revision(lab, "cluster02")
    cert, key = new_ca_pem()
    values = tmp_path / "other-ca.yaml"
    fd = os.open(values, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"tls": {"ca": {"cert": cert, "key": key}}}, f)
    try:
        # cluster02 as if installed on its own: its clustermesh certificates now chain to another CA.
        # Established connections outlive a certificate change; the restart makes every peer dial anew.
        helm(lab, "cluster02", "upgrade", "cilium", cilium_chart(lab), "-n", KUBE_SYSTEM, "--reuse-values",
             "-f", str(values))
        restart(lab, "cluster02", "clustermesh-apiserver")
        wait_for(lambda: both_read_one_refuses(lab, "cluster01", "cluster02"), 180,
                 "a kvstoremesh refuses the other CA, and both can be read")
        status = status_report(tmp_path)
        assert "Cilium CA differs within net-a" in status["clusters"]["cluster01"]["drift"]
        seen = link(status, "cluster01", "cluster02")
        assert seen["connection"] == "not connected", json.dumps(
            [seen, status["clusters"]["cluster01"].get("connection"), status["clusters"]["cluster02"].get("connection")])
    finally:
        helm(lab, "cluster02", "rollback", "cilium", str(before), "-n", KUBE_SYSTEM)
        restart(lab, "cluster02", "clustermesh-apiserver")
    for here, peer in (("cluster01", "cluster02"), ("cluster02", "cluster01")):
        wait_for(lambda h=here, p=peer: ready(lab, h, p), 180, "%s reconnects to %s" % (here, peer))


# ---- Istio --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def echo(lab, site_converged):
    """A Service ``echo`` with one endpoint in cluster01 and one in cluster03 (sidecar-labelled Pods)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    pods = {}
    for cluster in ("cluster01", "cluster03"):
        api = lab.clusters[cluster].api_client()
        v1, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        try:
            v1.create_namespace({"metadata": {"name": ECHO_NS}})
        except ApiException as err:
            if err.status != 409:
                raise
        v1.create_namespaced_service(ECHO_NS, {"metadata": {"name": "echo"}, "spec": {
            "selector": {"app": "echo"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
        apps.create_namespaced_deployment(ECHO_NS, {"metadata": {"name": "echo"}, "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": "echo"}},
            "template": {"metadata": {"labels": {"app": "echo", "security.istio.io/tlsMode": "istio"}},
                         "spec": {"containers": [{"name": "echo", "image": "example.invalid/echo:1",
                                                  "ports": [{"containerPort": 8080}]}]}}}})

        def pod_ip(core_api=v1):
            items = core_api.list_namespaced_pod(ECHO_NS, label_selector="app=echo").items
            return items[0].status.pod_ip if items and items[0].status.pod_ip else None
        pods[cluster] = wait_for(pod_ip, 60, "%s: echo Pod IP" % cluster, interval=1)
    yield pods
    for cluster in ("cluster01", "cluster03"):
        try:
            core(lab, cluster).delete_namespace(ECHO_NS)
        except ApiException as err:
            if err.status != 404:
                raise


def gateway_node_port(lab, cluster) -> int:
    """The nodePort of the east-west gateway's port 15443 (the lab has no load balancer)."""
    svc = core(lab, cluster).read_namespaced_service("istio-eastwestgateway", ISTIO_NS)
    return next(p.node_port for p in svc.spec.ports if p.port == 15443)


def gateway_endpoints(lab, cluster) -> set:
    """Where peers reach ``cluster``'s east-west gateway on the lab: each worker IP at the nodePort of 15443."""
    return {(ip, gateway_node_port(lab, cluster)) for ip in lab.clusters[cluster].worker_ips}


def test_istiod_reports_every_remote_cluster_synced(lab, site_converged):
    for here, remotes in (("cluster01", {"cluster03", "cluster04"}), ("cluster03", {"cluster01", "cluster02"})):
        seen = wait_for(lambda h=here, r=remotes: when(clusterz(lab, h), lambda z, r=r: set(z) == r and set(z.values()) == {"synced"}),
                        120, "%s's istiod syncs %s" % (here, sorted(remotes)))
        assert seen == {r: "synced" for r in remotes}


def test_a_net_a_proxy_gets_local_pods_and_net_b_gateways_on_15443(lab, echo):
    def answer():
        got = eds(lab, "cluster01", "net-a")
        return got if (echo["cluster01"], 8080) in got and len(got) > 1 else None
    got = wait_for(answer, 90, "EDS of echo for a net-a proxy")
    # Local endpoint directly; cluster03's Pod only through net-b's gateways (NodePort of 15443 here).
    assert (echo["cluster03"], 8080) not in got
    assert gateway_endpoints(lab, "cluster03") <= got
    assert got - {(echo["cluster01"], 8080)} <= gateway_endpoints(lab, "cluster03") | gateway_endpoints(lab, "cluster04")
    # And the other way round: a net-b proxy reaches cluster01's Pod through net-a's gateways.
    back = wait_for(lambda: when(eds(lab, "cluster03", "net-b"), lambda g: (echo["cluster03"], 8080) in g and len(g) > 1),
                    90, "EDS of echo for a net-b proxy")
    assert (echo["cluster01"], 8080) not in back
    assert gateway_endpoints(lab, "cluster01") <= back


def test_removing_net_b_drops_its_clusters_from_istiod_and_joining_brings_them_back(lab, echo, tmp_path):
    try:
        run_site(tmp_path, "-e", '{"interconnect_remove_groups": ["net-b"]}', playbook="playbooks/interconnect_remove.yml")
        wait_for(lambda: forgot(clusterz(lab, "cluster01"), {"cluster03", "cluster04"}),
                 120, "cluster01's istiod forgets cluster03 and cluster04")
        assert not {"cluster01", "cluster02"} & set(clusterz(lab, "cluster03"))
        wait_for(lambda: eds(lab, "cluster01", "net-a") == {(echo["cluster01"], 8080)}, 90,
                 "EDS of echo for net-a holds only the local Pod")
    finally:
        run_site(tmp_path / "join", playbook="playbooks/interconnect_join.yml")
    wait_for(lambda: set(clusterz(lab, "cluster01").items()) == {("cluster03", "synced"), ("cluster04", "synced")},
             120, "cluster01's istiod syncs net-b again")
    wait_for(lambda: gateway_endpoints(lab, "cluster03") <= eds(lab, "cluster01", "net-a"), 90,
             "net-b's gateways back in EDS")


def test_gateway_address_update_reaches_eds(lab, echo, tmp_path):
    overlay = str(REPO / "tests/integration/inventories/interconnect-address")
    try:
        run_site(tmp_path, inventories=("inventories/lab", overlay), playbook="playbooks/gateway_address_update.yml")
        # The inventory's address (a fixed front for cluster01's nodes), at the gateway's nodePort for 15443.
        new = ("172.30.1.200", gateway_node_port(lab, "cluster01"))
        got = wait_for(lambda: when(eds(lab, "cluster03", "net-b"), lambda g: new in g),
                       120, "EDS of echo for net-b carries cluster01's new gateway address")
        assert not gateway_endpoints(lab, "cluster01") & got
    finally:
        run_site(tmp_path / "back", playbook="playbooks/gateway_address_update.yml")
    wait_for(lambda: gateway_endpoints(lab, "cluster01") <= eds(lab, "cluster03", "net-b"), 120,
             "cluster01's gateway back at its node addresses")


def test_lab_status_names_the_real_pods(lab, site_converged):
    run = lab.run("status", check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "real-pods=2" in run.stdout
    pods = {p["pod"].rsplit("-", 2)[0]: p for p in lab.real_pods("cluster01")}
    assert set(pods) == {"kube-system/clustermesh-apiserver", "istio-system/istiod"}
    assert pathlib.Path("/proc/%d" % pods["istio-system/istiod"]["pause_pid"]).exists()
