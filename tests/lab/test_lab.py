"""The lab's promises: real control planes, simulated nodes, confined network."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab
LAB_PY = Path(__file__).resolve().parents[2] / "tools" / "lab" / "lab.py"


def _wait(pred, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _get_version(ip: str, port: int, ca_file: str, server_hostname: str) -> dict:
    ctx = ssl.create_default_context(cafile=ca_file)
    with socket.create_connection((ip, port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            tls.sendall(f"GET /version HTTP/1.1\r\nHost: {server_hostname}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    head, _separator, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    return json.loads(body)


def test_every_cluster_has_ready_nodes(lab):
    from kubernetes import client
    assert len(lab.clusters) >= 1
    for c in lab.clusters.values():
        # Other suites may register nodes of their own; the lab's three must be there.
        want = {n["name"] for n in c.nodes}
        nodes = [n for n in client.CoreV1Api(c.api_client()).list_node().items if n.metadata.name in want]
        assert {n.metadata.name for n in nodes} == want
        for n in nodes:
            ready = [x for x in n.status.conditions if x.type == "Ready"]
            assert ready and ready[0].status == "True", (c.name, n.metadata.name)
            ips = [a.address for a in n.status.addresses if a.type == "InternalIP"]
            assert ips and ips[0] in c.node_ips
            assert ipaddress.ip_network(n.spec.pod_cidr).subnet_of(ipaddress.ip_network(c.pod_cidr))
        cp = [n for n in nodes if n.metadata.name == f"{c.name}-control-plane"][0]
        assert "node-role.kubernetes.io/control-plane" in cp.metadata.labels


def test_apiserver_pod_looks_like_kubeadm(lab):
    from kubernetes import client
    for c in lab.clusters.values():
        pod = client.CoreV1Api(c.api_client()).read_namespaced_pod(
            f"kube-apiserver-{c.name}-control-plane", "kube-system")
        assert pod.metadata.labels == {"component": "kube-apiserver", "tier": "control-plane"}
        assert pod.spec.host_network and pod.spec.node_name == f"{c.name}-control-plane"
        assert pod.status.phase == "Running" and pod.status.pod_ip == c.apiserver_ip
        # Ready, or a NodePort Service selecting it has no ready endpoint and no node port opens.
        assert [x.status for x in pod.status.conditions if x.type == "Ready"] == ["True"], c.name


def test_deployment_pods_get_ips_from_the_cluster_pod_cidr(lab):
    from kubernetes import client
    for c in lab.clusters.values():
        api = c.api_client()
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        ns = f"lab-test-{uuid.uuid4().hex[:6]}"
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        try:
            labels = {"app": "probe"}
            apps.create_namespaced_deployment(ns, client.V1Deployment(
                metadata=client.V1ObjectMeta(name="probe"),
                spec=client.V1DeploymentSpec(
                    replicas=3, selector=client.V1LabelSelector(match_labels=labels),
                    template=client.V1PodTemplateSpec(
                        metadata=client.V1ObjectMeta(labels=labels),
                        spec=client.V1PodSpec(containers=[client.V1Container(
                            name="probe", image="registry.k8s.io/pause:3.10")])))))

            def running():
                pods = core.list_namespaced_pod(ns, label_selector="app=probe").items
                ok = [p for p in pods if p.status.phase == "Running" and p.status.pod_ip]
                return ok if len(ok) == 3 else None

            pods = _wait(running, 60, f"{c.name}: 3 running probe pods")
            for p in pods:
                assert ipaddress.ip_address(p.status.pod_ip) in ipaddress.ip_network(c.pod_cidr), (c.name, p.status.pod_ip)
        finally:
            core.delete_namespace(ns)


@pytest.fixture(scope="module")
def apiserver_nodeport(lab):
    """A NodePort Service for the API server Pod in every cluster, as the apiserver_nodeport role makes."""
    from kubernetes import client
    ports = {}
    for c in lab.clusters.values():
        core = client.CoreV1Api(c.api_client())
        svc = client.V1Service(
            metadata=client.V1ObjectMeta(name="lab-test-apiserver"),
            spec=client.V1ServiceSpec(type="NodePort", selector={"component": "kube-apiserver", "tier": "control-plane"},
                                      ports=[client.V1ServicePort(name="https", port=443, target_port=6443)]))
        created = core.create_namespaced_service("kube-system", svc)
        ports[c.name] = created.spec.ports[0].node_port
    yield ports
    from kubernetes.client.exceptions import ApiException
    for c in lab.clusters.values():
        try:
            client.CoreV1Api(c.api_client()).delete_namespaced_service("lab-test-apiserver", "kube-system")
        except ApiException as e:
            if e.status != 404:  # gone already when the down/up test ran before teardown
                raise


def test_apiserver_nodeport_answers_over_verified_tls(lab, apiserver_nodeport):
    for c in lab.clusters.values():
        port = apiserver_nodeport[c.name]
        for ip in c.node_ips:
            for name in (c.apiserver_ip, "kubernetes"):
                def answer():
                    try:
                        return _get_version(ip, port, c.ca_file, server_hostname=name)
                    except OSError:
                        return None
                version = _wait(answer, 30, f"{c.name}: {ip}:{port} as {name}")
                assert version["gitVersion"].startswith("v1."), version
                assert version["gitVersion"] != "v0.0.0-master+$Format:%H$"


def test_worker_ip_is_not_in_the_apiserver_certificate(lab, apiserver_nodeport):
    for c in lab.clusters.values():
        port = apiserver_nodeport[c.name]
        worker = c.worker_ips[0]

        def open_port(worker=worker, port=port, ca_file=c.ca_file):
            try:
                return _get_version(worker, port, ca_file, "kubernetes")
            except OSError:  # the forwarder opens the new nodePort a moment later
                return None
        _wait(open_port, 30, "forwarder")
        with pytest.raises(ssl.SSLCertVerificationError):
            _get_version(worker, port, c.ca_file, server_hostname=worker)


def test_namespace_has_no_default_route(lab):
    for family in ("-4", "-6"):
        routes = subprocess.run(["ip", family, "-n", lab.netns, "route", "show", "table", "all"],
                                check=True, text=True, capture_output=True).stdout
        assert not [r for r in routes.splitlines() if r.split()[:1] == ["default"]
                    or r.split()[:2] in (["unreachable", "default"], ["blackhole", "default"])], routes
    # An address of the Pod CIDR is refused at once inside the namespace (no route leaves it).
    # Pods the lab runs for real have a /32 route of their own, so the probe is an address no Pod holds.
    from kubernetes import client
    c = next(iter(lab.clusters.values()))
    held = {pod.status.pod_ip for pod in client.CoreV1Api(c.api_client()).list_pod_for_all_namespaces().items}
    probe = next(str(ip) for ip in ipaddress.ip_network(c.pod_cidr).hosts() if str(ip) not in held)
    r = subprocess.run(["ip", "netns", "exec", lab.netns, "python3", "-c",
                        f"import socket; socket.create_connection(('{probe}', 443), timeout=3)"],
                       text=True, capture_output=True, check=False)
    # EHOSTUNREACH from the unreachable route, at once rather than after a timeout.
    assert r.returncode != 0 and "no route to host" in r.stderr.lower(), r.stderr


def _pids_in(state_dir: Path) -> list[int]:
    pids = []
    for pidfile in state_dir.glob("*/pids/*.pid"):
        try:
            pid = int(pidfile.read_text())
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError):
            continue
        # An exited child waiting for init to reap it is a zombie, not a running process.
        if state != "Z":
            pids.append(pid)
    return pids


def _processes_using(path: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(path) in cmd and "pytest" not in cmd:
                found.append(f"{proc.name}: {cmd}")
    return found


def test_status_names_a_stopped_component_and_down_leaves_nothing(lab, tmp_path):
    """Runs a second, one-cluster lab (own namespace, address block and state) so that the
    shared lab, which other test runs may be using, is never disturbed."""
    env = dict(os.environ, LAB_NETNS="mci-labt", LAB_NET_PREFIX="172.29", LAB_STATE_DIR=str(tmp_path / "state"))

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(LAB_PY), *args], env=env, check=check, text=True,
                              capture_output=True, timeout=600)

    try:
        run("up", "--clusters", "1")
        r = run("status", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        assert _pids_in(tmp_path / "state")
        run("stop-apiserver", "cluster01")
        r = run("status", check=False)
        assert r.returncode != 0 and "cluster01: kube-apiserver stopped" in r.stdout, r.stdout
        run("start-apiserver", "cluster01")
        r = run("status", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        run("down")
        assert not _pids_in(tmp_path / "state")
        assert "mci-labt" not in subprocess.run(["ip", "netns", "list"], text=True, capture_output=True,
                                                check=True).stdout.split()
        assert subprocess.run(["ip", "link", "show", "mci-labt0"], capture_output=True, check=False).returncode != 0
        assert not _processes_using(tmp_path / "state")
        assert run("status", check=False).returncode != 0
    finally:
        run("down", check=False)
    # The shared lab was not touched.
    assert lab.run("status", check=False).returncode == 0


# ---- Pods backed by real processes (tools/lab/podrunner.py) ------------------------------------

ETCD_IMAGE = "quay.io/cilium/clustermesh-apiserver:v1.20.2"  # the image whose files the lab has built


@pytest.fixture
def real_pod_namespace(lab):
    from kubernetes import client
    c = lab.clusters["cluster02"]
    core = client.CoreV1Api(c.api_client())
    ns = f"lab-real-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    yield c, core, ns
    core.delete_namespace(ns)
    _wait(lambda: not any(p["pod"].startswith(ns + "/") for p in lab.real_pods(c.name)), 60,
          "the pod runner stops the namespace's Pods")


def test_a_pod_of_a_built_image_runs_its_spec_for_real(lab, real_pod_namespace):
    """Command, args with $(VAR) from a fieldRef, a mounted ConfigMap: the process listens where they say."""
    c, core, ns = real_pod_namespace
    core.create_namespaced_config_map(ns, {"metadata": {"name": "etcd"}, "data": {
        "etcd.yaml": "name: from-configmap\ndata-dir: /var/run/etcd/data\n"
                     "listen-client-urls: http://0.0.0.0:23799\nadvertise-client-urls: http://127.0.0.1:23799\n"}})
    core.create_namespaced_pod(ns, {"metadata": {"name": "etcd"}, "spec": {"containers": [{
        "name": "etcd", "image": ETCD_IMAGE, "command": ["/usr/bin/etcd"],
        "args": ["--config-file=$(CONFIG_DIR)/etcd.yaml"],
        "env": [{"name": "CONFIG_DIR", "value": "/etc/etcd-config"}],
        "volumeMounts": [{"name": "config", "mountPath": "/etc/etcd-config", "readOnly": True},
                         {"name": "data", "mountPath": "/var/run/etcd"}]}],
        "volumes": [{"name": "config", "configMap": {"name": "etcd"}}, {"name": "data", "emptyDir": {}}]}})
    pod = lab.real_pod(c.name, f"{ns}/etcd", timeout=90)
    pod_ip = core.read_namespaced_pod("etcd", ns).status.pod_ip
    assert pod["ip"] == pod_ip and ipaddress.ip_address(pod_ip) in ipaddress.ip_network(c.pod_cidr)

    # Through the API server's Pod proxy, as status reads a component's metrics port.
    def version():
        try:
            return core.connect_get_namespaced_pod_proxy_with_path("etcd:23799", ns, "version",
                                                                   _preload_content=False).data
        except Exception:  # noqa: BLE001 - not listening yet
            return None
    assert b"etcdserver" in _wait(version, 60, "etcd answers on the port its ConfigMap names")
    # The rest of the Pod CIDR stays unreachable in the lab namespace; the Pod IP does not.
    assert lab.in_netns("python3", "-c", f"import socket; socket.create_connection(('{pod_ip}', 23799), 3)").returncode == 0


def test_lab_status_names_a_crashing_container_and_the_runner_restarts_it(lab, real_pod_namespace):
    c, core, ns = real_pod_namespace
    core.create_namespaced_pod(ns, {"metadata": {"name": "crash"}, "spec": {"containers": [{
        "name": "bad", "image": ETCD_IMAGE, "args": ["no-such-command"]}]}})

    def crashed():
        pods = [p for p in lab.real_pods(c.name) if p["pod"] == f"{ns}/crash"]
        return pods and pods[0]["containers"][0]["restarts"] >= 1 and pods[0]["containers"][0]
    container = _wait(crashed, 90, "the crashing container is restarted")
    assert container["last_exit_code"] not in (0, None)
    run = lab.run("status", check=False)
    assert run.returncode == 1
    assert f"{c.name}: Pod {ns}/crash container bad crashed" in run.stdout
    core.delete_namespaced_pod("crash", ns)
    _wait(lambda: lab.run("status", check=False).returncode == 0, 60, "lab status is clean once the Pod is gone")
