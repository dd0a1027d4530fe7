#!/usr/bin/env python3
"""Local multi-cluster lab: real Kubernetes control planes, kwok-simulated nodes.

Each cluster is etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok,
plus a small NodePort forwarder standing in for kube-proxy. Every process runs inside the
network namespace ``mci-lab``, which has no default route: whatever the control planes
dial (webhooks, Service and Pod IPs of simulated Pods) cannot leave it. The host reaches
the API servers and node IPs through a veth pair.

Commands: up, down, status, env, stop-apiserver CLUSTER, start-apiserver CLUSTER.
Needs root (network namespace), stdlib and the ``cryptography`` package.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import podrunner

HERE = Path(__file__).resolve().parent
# A second, independent instance (tests of `down`) sets LAB_NETNS, LAB_NET_PREFIX and
# LAB_STATE_DIR; the defaults are the shared lab.
NETNS = os.environ.get("LAB_NETNS", "mci-lab")
NET_PREFIX = os.environ.get("LAB_NET_PREFIX", "172.30")
HOST_IF, NS_IF = f"{NETNS}0", f"{NETNS}1"
HOST_ADDR, NS_ADDR = f"{NET_PREFIX}.255.1", f"{NET_PREFIX}.255.2"
# Node IPs: 172.30.<cluster index>.10 (control plane), .11 and .12 (workers).
NODE_BLOCK = f"{NET_PREFIX}.0.0/16"
DEFAULT_CLUSTERS = 4
# Demo plan: odd clusters use net-a's ranges, even ones the second set; cluster03/04 reuse
# cluster01/02's ranges on purpose (net-b overlaps net-a).
RANGES = [("10.244.0.0/16", "10.96.0.0/16"), ("10.245.0.0/16", "10.97.0.0/16")]
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "nodeport-forwarder",
              "pod-runner")


def log(msg: str) -> None:
    print(f"[lab] {msg}", flush=True)


def state_dir() -> Path:
    env = os.environ.get("LAB_STATE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "multicloud-interconnect" / "lab-state"


# --------------------------------------------------------------------------- topology

def plan(n: int) -> list[dict]:
    clusters = []
    for i in range(1, n + 1):
        pods, svc = RANGES[(i - 1) % 2]
        name = f"cluster{i:02d}"
        pod_net = ipaddress.ip_network(pods)
        nodes = []
        for k, (suffix, ip_last) in enumerate((("control-plane", 10), ("worker", 11), ("worker2", 12))):
            # Each node gets a /24 of the cluster Pod CIDR, as KCM's node IPAM would. Clusters
            # that share a Pod CIDR (the demo's net-b reuses net-a's) get different /24s of it,
            # so the Pods the lab runs for real never get the same IP in its one namespace.
            pod_cidr = str(list(pod_net.subnets(new_prefix=24))[(((i - 1) // 2) * 3 + k) % 256])
            nodes.append({"name": f"{name}-{suffix}", "ip": f"{NET_PREFIX}.{i}.{ip_last}", "pod_cidr": pod_cidr,
                          "control_plane": k == 0})
        clusters.append({
            "name": name, "index": i, "pod_cidr": pods, "service_cidr": svc,
            "first_service_ip": str(next(ipaddress.ip_network(svc).hosts())),
            "apiserver_ip": nodes[0]["ip"], "nodes": nodes,
            "etcd_client_port": 23000 + i * 10, "etcd_peer_port": 23001 + i * 10,
            "network_group": "net-a" if i <= 2 else "net-b",
        })
    return clusters


# --------------------------------------------------------------------------- PKI

def _pki():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    return x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID


def write_secret(path: Path, data: bytes | str) -> None:
    """Write key material and admin credentials readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


class CertAuthority:
    def __init__(self, d: Path, name: str, cn: str):
        x509, hashes, serialization, ec, _, NameOID = _pki()
        self.crt_path, self.key_path = d / f"{name}.crt", d / f"{name}.key"
        if self.crt_path.exists() and self.key_path.exists():
            self.key = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
            self.cert = x509.load_pem_x509_certificate(self.crt_path.read_bytes())
            return
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + datetime.timedelta(days=3650))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
                     .sign(self.key, hashes.SHA256()))
        write_secret(self.key_path, self.key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
        self.crt_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, d: Path, name: str, cn: str, orgs=(), dns=(), ips=(), server=False, client=False):
        x509, hashes, serialization, ec, EKU, NameOID = _pki()
        crt, key_path = d / f"{name}.crt", d / f"{name}.key"
        if crt.exists() and key_path.exists():
            return crt, key_path
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
        now = datetime.datetime.now(datetime.timezone.utc)
        usages = ([EKU.SERVER_AUTH] if server else []) + ([EKU.CLIENT_AUTH] if client else [])
        b = (x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(self.cert.subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=365))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                          content_commitment=False, data_encipherment=False, key_agreement=False,
                                          crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
             .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False))
        sans = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = b.sign(self.key, hashes.SHA256())
        write_secret(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
        crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return crt, key_path


def kubeconfig(cluster: str, server: str, ca: Path, crt: Path, key: Path, user: str) -> str:
    b64 = lambda p: base64.b64encode(p.read_bytes()).decode()  # noqa: E731
    # JSON is valid YAML: no YAML library is needed here.
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": cluster, "preferences": {},
        "clusters": [{"name": cluster, "cluster": {"server": server, "certificate-authority-data": b64(ca)}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(crt), "client-key-data": b64(key)}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
    }, indent=2) + "\n"


def ensure_pki(root: Path, c: dict) -> None:
    from cryptography.hazmat.primitives import serialization
    d = root / c["name"] / "pki"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    ca = CertAuthority(d, "ca", "kubernetes")
    cp = c["nodes"][0]
    # Names as kubeadm puts them in apiserver.crt: the control-plane node's IP and name, the
    # first Service IP and the in-cluster names; never the workers' IPs.
    ca.issue(d, "apiserver", "kube-apiserver", server=True,
             dns=["kubernetes", "kubernetes.default", "kubernetes.default.svc",
                  "kubernetes.default.svc.cluster.local", cp["name"], "localhost"],
             ips=[c["first_service_ip"], cp["ip"], "127.0.0.1"])
    front = CertAuthority(d, "front-proxy-ca", "front-proxy-ca")
    front.issue(d, "front-proxy-client", "front-proxy-client", client=True)
    sa_key = d / "sa.key"
    if not sa_key.exists():
        from cryptography.hazmat.primitives.asymmetric import ec
        k = ec.generate_private_key(ec.SECP256R1())
        write_secret(sa_key, k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
        (d / "sa.pub").write_bytes(k.public_key().public_bytes(serialization.Encoding.PEM,
                                                               serialization.PublicFormat.SubjectPublicKeyInfo))
    server = f"https://{c['apiserver_ip']}:6443"
    users = {
        "admin": ("kubernetes-admin", ["system:masters"]),
        "controller-manager": ("system:kube-controller-manager", []),
        "scheduler": ("system:kube-scheduler", []),
        # kwok plays every kubelet of the cluster: node status, leases and Pod status.
        "kwok": ("kwok-controller", ["system:masters"]),
        # Bound to system:node-proxier by the default RBAC policy, like kube-proxy.
        "nodeport-forwarder": ("system:kube-proxy", []),
        # Plays the kubelets for the Pods the lab runs for real (tools/lab/podrunner.py): reads
        # their Secrets and ConfigMaps, requests their ServiceAccount tokens.
        "pod-runner": ("lab-pod-runner", ["system:masters"]),
    }
    for name, (cn, orgs) in users.items():
        crt, key = ca.issue(d, name, cn, orgs=orgs, client=True)
        target = root / "kubeconfigs" / f"{c['name']}.yaml" if name == "admin" else root / c["name"] / f"{name}.kubeconfig"
        if not target.exists():
            write_secret(target, kubeconfig(c["name"], server, ca.crt_path, crt, key, cn))


# --------------------------------------------------------------------------- network

def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, text=True, capture_output=True)


def netns_exists() -> bool:
    return NETNS in sh("ip", "netns", "list").stdout.split()


def ensure_network(clusters: list[dict]) -> None:
    if not netns_exists():
        sh("ip", "netns", "add", NETNS)
    nsx = ("ip", "-n", NETNS)
    sh(*nsx, "link", "set", "lo", "up")
    if sh("ip", "link", "show", HOST_IF, check=False).returncode != 0:
        sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF, "netns", NETNS)
    sh("ip", "addr", "replace", f"{HOST_ADDR}/30", "dev", HOST_IF)
    sh("ip", "link", "set", HOST_IF, "up")
    sh(*nsx, "addr", "replace", f"{NS_ADDR}/30", "dev", NS_IF)
    sh(*nsx, "link", "set", NS_IF, "up")
    # Only the lab's node block goes to the namespace; no other host route changes.
    sh("ip", "route", "replace", NODE_BLOCK, "via", NS_ADDR, "dev", HOST_IF)
    for c in clusters:
        for n in c["nodes"]:
            sh(*nsx, "addr", "replace", f"{n['ip']}/32", "dev", "lo")
    # Simulated Pods and Services have no data plane. Unreachable routes make a dial to
    # them (a webhook, an APIService) fail at once instead of waiting for a timeout.
    for cidr in sorted({x for c in clusters for x in (c["pod_cidr"], c["service_cidr"])}):
        sh(*nsx, "route", "replace", "unreachable", cidr)


def remove_network() -> None:
    sh("ip", "link", "del", HOST_IF, check=False)
    if netns_exists():
        sh("ip", "netns", "del", NETNS)


# --------------------------------------------------------------------------- processes

def pid_alive(pidfile: Path, needle: str) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    # A reused pid runs another command line; a zombie has exited.
    if needle not in cmdline or stat.rsplit(")", 1)[1].split()[0] == "Z":
        return None
    return pid


def start_process(root: Path, cluster: str, comp: str, argv: list[str]) -> None:
    d = root / cluster
    pidfile, logfile = d / "pids" / f"{comp}.pid", d / "logs" / f"{comp}.log"
    if pid_alive(pidfile, comp_needle(comp)):
        return
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as out:
        # `ip netns exec` enters the namespace and execs argv, so the pid is the component's.
        p = subprocess.Popen(["ip", "netns", "exec", NETNS, *argv], stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True, cwd=d)
    pidfile.write_text(f"{p.pid}\n")


def comp_needle(comp: str) -> str:
    """The string a live process of this component has in its command line."""
    return {"nodeport-forwarder": "_forwarder", "pod-runner": "_pod_runner"}.get(comp, comp)


def stop_process(root: Path, cluster: str, comp: str, timeout: float = 5) -> None:
    pidfile = root / cluster / "pids" / f"{comp}.pid"
    pid = pid_alive(pidfile, comp_needle(comp))
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pidfile, comp_needle(comp)):
            time.sleep(0.1)
        if pid_alive(pidfile, comp_needle(comp)):
            os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def command_for(root: Path, bindir: Path, c: dict, comp: str) -> list[str]:
    d, pki, ip = root / c["name"], root / c["name"] / "pki", c["apiserver_ip"]
    etcd_url = f"http://127.0.0.1:{c['etcd_client_port']}"
    if comp == "etcd":
        return [str(bindir / "etcd"), f"--name={c['name']}", f"--data-dir={d / 'etcd'}",
                f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{c['etcd_peer_port']}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{c['etcd_peer_port']}",
                f"--initial-cluster={c['name']}=http://127.0.0.1:{c['etcd_peer_port']}",
                "--log-level=warn",
                # A throwaway lab: fsync only costs time, and small quotas keep RSS down.
                "--unsafe-no-fsync", "--quota-backend-bytes=1073741824", "--snapshot-count=5000"]
    if comp == "kube-apiserver":
        return [str(bindir / "kube-apiserver"), f"--etcd-servers={etcd_url}",
                f"--bind-address={ip}", "--secure-port=6443", f"--advertise-address={ip}",
                f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={c['service_cidr']}",
                "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
                "--allow-privileged=true",
                f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-username-headers=X-Remote-User",
                f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
                f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
                "--profiling=false", "--event-ttl=30m", "--v=1"]
    kc = lambda name: str(d / f"{name}.kubeconfig")  # noqa: E731
    if comp == "kube-controller-manager":
        return [str(bindir / "kube-controller-manager"), f"--kubeconfig={kc('controller-manager')}",
                f"--authentication-kubeconfig={kc('controller-manager')}",
                f"--authorization-kubeconfig={kc('controller-manager')}",
                f"--bind-address={ip}", f"--client-ca-file={pki / 'ca.crt'}",
                f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}", f"--cluster-signing-key-file={pki / 'ca.key'}",
                f"--root-ca-file={pki / 'ca.crt'}", f"--service-account-private-key-file={pki / 'sa.key'}",
                "--use-service-account-credentials=true", "--leader-elect=false",
                f"--cluster-name={c['name']}", f"--cluster-cidr={c['pod_cidr']}",
                f"--service-cluster-ip-range={c['service_cidr']}",
                # Node podCIDRs are set when the lab registers the nodes (see register_nodes).
                "--allocate-node-cidrs=false", "--controllers=*,bootstrapsigner,tokencleaner",
                # kwok renews leases only while the API server is up, and it does not set a Pod
                # Ready again once the node controller cleared it; a long grace period keeps a
                # stopped-then-started API server (the fault tests) from leaving every Pod NotReady.
                "--node-monitor-grace-period=10m",
                "--profiling=false", "--v=1"]
    if comp == "kube-scheduler":
        return [str(bindir / "kube-scheduler"), f"--kubeconfig={kc('scheduler')}",
                f"--authentication-kubeconfig={kc('scheduler')}", f"--authorization-kubeconfig={kc('scheduler')}",
                f"--bind-address={ip}", "--leader-elect=false", "--profiling=false", "--v=1"]
    if comp == "kwok":
        return [str(bindir / "kwok"), f"--kubeconfig={kc('kwok')}", f"--config={bindir.parent / 'kwok-stages.yaml'}",
                "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--node-lease-duration-seconds=40", f"--server-address={ip}:10247", f"--node-ip={ip}"]
    if comp == "nodeport-forwarder":
        return [sys.executable, str(Path(__file__).resolve()), "_forwarder", c["name"]]
    if comp == "pod-runner":
        return [sys.executable, str(Path(__file__).resolve()), "_pod_runner", c["name"]]
    raise ValueError(comp)


# --------------------------------------------------------------------------- API access

class Api:
    """Minimal Kubernetes API client (stdlib), authenticated by a kubeconfig's client cert."""

    def __init__(self, kubeconfig_path: Path, server: str | None = None):
        cfg = json.loads(kubeconfig_path.read_text())
        self.server = server or cfg["clusters"][0]["cluster"]["server"]
        user = cfg["users"][0]["user"]
        self.ctx = ssl.create_default_context(
            cadata=base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"]).decode())
        tmp = kubeconfig_path.parent / f".{kubeconfig_path.name}.pem"
        if not tmp.exists():
            write_secret(tmp, base64.b64decode(user["client-certificate-data"])
                         + base64.b64decode(user["client-key-data"]))
        self.ctx.load_cert_chain(str(tmp))

    def call(self, method: str, path: str, body: dict | None = None, timeout: float = 10):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as r:
            raw = r.read()
            return json.loads(raw) if raw.startswith(b"{") else raw.decode()

    def patch(self, path: str, body: dict, timeout: float = 10) -> dict:
        req = urllib.request.Request(self.server + path, data=json.dumps(body).encode(), method="PATCH",
                                     headers={"Content-Type": "application/merge-patch+json",
                                              "Accept": "application/json"})
        with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as r:
            return json.loads(r.read())

    def ensure(self, path: str, body: dict) -> None:
        try:
            self.call("POST", path, body)
        except urllib.error.HTTPError as e:
            if e.code != 409:
                raise RuntimeError(f"POST {path}: {e.code} {e.read()[:300]!r}") from e


def wait_ready(api: Api, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if api.call("GET", "/readyz", timeout=3) == "ok":
                return
        except Exception as e:  # noqa: BLE001 - keep polling until the deadline
            last = e
        time.sleep(0.5)
    raise RuntimeError(f"{what} not ready after {timeout:.0f}s: {last}")


def register_nodes(api: Api, c: dict, k8s_version: str) -> None:
    for n in c["nodes"]:
        labels = {"kubernetes.io/hostname": n["name"], "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                  "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64", "type": "kwok"}
        if n["control_plane"]:
            labels["node-role.kubernetes.io/control-plane"] = ""
            labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
        api.ensure("/api/v1/nodes", {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": n["name"], "labels": labels,
                         # kwok manages only nodes carrying this annotation.
                         "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}},
            "spec": {"podCIDR": n["pod_cidr"], "podCIDRs": [n["pod_cidr"]]},
            "status": {"addresses": [{"type": "InternalIP", "address": n["ip"]},
                                     {"type": "Hostname", "address": n["name"]}],
                       "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                       "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                       "nodeInfo": {"kubeletVersion": k8s_version, "kubeProxyVersion": k8s_version,
                                    "architecture": "amd64", "operatingSystem": "linux",
                                    "containerRuntimeVersion": "kwok", "osImage": "kwok",
                                    "kernelVersion": "kwok", "machineID": "", "systemUUID": "", "bootID": ""}},
        })


def register_apiserver_pod(api: Api, c: dict, k8s_version: str) -> None:
    cp = c["nodes"][0]
    # Looks like the mirror Pod of kubeadm's kube-apiserver static Pod, so that what selects
    # the API server by label (a NodePort Service, peer kubeconfigs) finds it.
    api.ensure("/api/v1/namespaces/kube-system/pods", {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"kube-apiserver-{cp['name']}", "namespace": "kube-system",
                     "labels": {"component": "kube-apiserver", "tier": "control-plane"},
                     "annotations": {
                         "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint": f"{cp['ip']}:6443",
                         "kubernetes.io/config.source": "file", "kubernetes.io/config.mirror": "lab"}},
        "spec": {"nodeName": cp["name"], "hostNetwork": True, "priorityClassName": "system-node-critical",
                 "tolerations": [{"operator": "Exists", "effect": "NoExecute"}],
                 "containers": [{"name": "kube-apiserver", "image": f"registry.k8s.io/kube-apiserver:{k8s_version}",
                                 "command": ["kube-apiserver", f"--advertise-address={cp['ip']}", "--secure-port=6443"],
                                 "ports": [{"name": "probe-port", "containerPort": 6443, "protocol": "TCP"}]}]},
    })


APISERVER_POD_PATH = "/api/v1/namespaces/kube-system/pods/kube-apiserver-{node}"


def apiserver_pod_ready(api: Api, c: dict, timeout: float, nudge_after: float = 5) -> None:
    """Until kwok has marked the API server's mirror Pod Ready (what selects it by label, such as a
    NodePort Service, finds no ready endpoint before that).

    kwok acts on a Pod event; one that arrives while kwok is still learning its nodes is dropped
    and never retried, leaving the Pod without status. A Pod still without status after
    ``nudge_after`` seconds is touched (an annotation), which sends kwok a new event.
    """
    path = APISERVER_POD_PATH.format(node=c["nodes"][0]["name"])
    deadline = time.monotonic() + timeout
    nudge_at = time.monotonic() + nudge_after
    while time.monotonic() < deadline:
        pod = api.call("GET", path)
        if any(x["type"] == "Ready" and x["status"] == "True" for x in pod.get("status", {}).get("conditions", [])):
            return
        if time.monotonic() >= nudge_at:
            api.patch(path, {"metadata": {"annotations": {"lab.multicloud-interconnect/nudged": str(time.time())}}})
            log(f"{c['name']}: kube-apiserver Pod not Ready yet, nudged kwok")
            nudge_at = time.monotonic() + nudge_after
        time.sleep(0.5)
    raise RuntimeError(f"{c['name']}: kube-apiserver Pod not Ready after {timeout:.0f}s")


def wait_configmap(api: Api, namespace: str, name: str, timeout: float, cluster: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            api.call("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}")
            return
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
        time.sleep(0.5)
    raise RuntimeError(f"{cluster}: ConfigMap {namespace}/{name} not published after {timeout:.0f}s")


def wait_nodes_ready(api: Api, c: dict, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    want = {n["name"] for n in c["nodes"]}
    while time.monotonic() < deadline:
        items = api.call("GET", "/api/v1/nodes")["items"]
        ready = {i["metadata"]["name"] for i in items
                 if any(x["type"] == "Ready" and x["status"] == "True" for x in i.get("status", {}).get("conditions", []))}
        if want <= ready:
            return
        time.sleep(0.5)
    raise RuntimeError(f"{c['name']}: nodes not Ready after {timeout:.0f}s")


# --------------------------------------------------------------------------- commands

def bin_dir() -> Path:
    out = subprocess.run([sys.executable, str(HERE / "build.py"), "--print-dir"], check=True,
                         capture_output=True, text=True).stdout.strip()
    return Path(out) / "bin"


def load_state(root: Path) -> dict | None:
    p = root / "lab.json"
    return json.loads(p.read_text()) if p.exists() else None


def component_health(root: Path, st: dict) -> list[tuple[str, str, str]]:
    problems = []
    for c in st["clusters"]:
        for comp in COMPONENTS:
            if not pid_alive(root / c["name"] / "pids" / f"{comp}.pid", comp_needle(comp)):
                why = "stopped by stop-apiserver" if comp in st.get("stopped", {}).get(c["name"], []) else "not running"
                problems.append((c["name"], comp, why))
    return problems


def pod_health(root: Path, st: dict) -> list[tuple[str, str, str]]:
    """Containers of the Pods the lab runs for real that are not running (pods.json)."""
    problems = []
    for c in st["clusters"]:
        f = root / c["name"] / "pods.json"
        if not f.exists():
            continue
        for pod in json.loads(f.read_text()).get("pods", []):
            for ctr in pod["containers"]:
                if ctr["state"] == "running" or (ctr["init"] and ctr["state"] == "completed"):
                    continue
                if ctr["restarts"]:
                    why = f"crashed (exit {ctr['last_exit_code']}, {ctr['restarts']} restarts)"
                else:
                    why = f"not started: {ctr['waiting'] or pod['problem'] or 'waiting'}"
                problems.append((c["name"], f"{pod['pod']} container {ctr['name']}", f"{why} (log: {ctr['log']})"))
    return problems


LAB_PATHS_FILE = HERE.parent.parent / "inventories" / "lab" / "group_vars" / "all" / "lab_paths.yml"


def write_lab_paths(bindir: Path) -> None:
    """Where the lab's helm and exported charts are, for inventories/lab (generated, git-ignored)."""
    build = bindir.parent
    kosmos = build / "charts" / "kosmos"
    # Without an export (the Kosmos module is not served by every module proxy) the lab's
    # stand-in CRDs keep the Kosmos role runnable; lab_kosmos_standin says which one is in use.
    standin = not any(kosmos.glob("*.yaml"))
    text = (
        "# Written by tools/lab/lab.py up: where this machine's lab build lives. Do not edit.\n"
        f"lab_build_dir: {build}\n"
        f"lab_helm_binary: {bindir / 'helm'}\n"
        f"lab_charts_dir: {build / 'charts'}\n"
        f"lab_kosmos_manifests: {HERE / 'standin' / 'kosmos' if standin else kosmos}\n"
        f"lab_kosmos_standin: {'true' if standin else 'false'}\n"
    )
    LAB_PATHS_FILE.parent.mkdir(parents=True, exist_ok=True)
    if not LAB_PATHS_FILE.exists() or LAB_PATHS_FILE.read_text() != text:
        LAB_PATHS_FILE.write_text(text)


def cmd_up(args) -> int:
    t0 = time.monotonic()
    root = state_dir()
    st = load_state(root)
    if st and netns_exists() and not component_health(root, st) and len(st["clusters"]) == args.clusters:
        write_lab_paths(bin_dir())
        for c in st["clusters"]:
            apiserver_pod_ready(Api(root / "kubeconfigs" / f"{c['name']}.yaml"), c, 60)
        log(f"already up ({len(st['clusters'])} clusters); kubeconfigs in {root / 'kubeconfigs'}")
        return 0
    if st and len(st["clusters"]) != args.clusters:
        log(f"lab has {len(st['clusters'])} clusters, {args.clusters} requested: recreating")
        cmd_down(args)
    subprocess.run([sys.executable, str(HERE / "build.py")], check=True)
    bindir = bin_dir()
    write_lab_paths(bindir)
    versions = json.loads((bindir.parent / "build.json").read_text())["versions"]
    clusters = plan(args.clusters)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    for c in clusters:
        ensure_pki(root, c)
    ensure_network(clusters)
    st = {"clusters": clusters, "netns": NETNS, "bin_dir": str(bindir), "stopped": {},
          "k8s_version": versions["K8S_VERSION"], "host_addr": HOST_ADDR, "node_block": NODE_BLOCK}
    (root / "lab.json").write_text(json.dumps(st, indent=2) + "\n")
    errors: list[str] = []

    def bring_up(c: dict) -> None:
        try:
            for comp in ("etcd", "kube-apiserver"):
                start_process(root, c["name"], comp, command_for(root, bindir, c, comp))
            api = Api(root / "kubeconfigs" / f"{c['name']}.yaml")
            wait_ready(api, 120, f"{c['name']} kube-apiserver")
            for comp in COMPONENTS[2:]:
                start_process(root, c["name"], comp, command_for(root, bindir, c, comp))
            register_nodes(api, c, versions["K8S_VERSION"])
            wait_nodes_ready(api, c, 90)
            # After the nodes are Ready, kwok knows them and takes the Pod's first event.
            register_apiserver_pod(api, c, versions["K8S_VERSION"])
            apiserver_pod_ready(api, c, 60)
            # As on a running cluster: the controller manager has published the cluster CA that
            # Pods (and the apiserver_nodeport role) read from kube-system.
            wait_configmap(api, "kube-system", "kube-root-ca.crt", 60, c["name"])
            log(f"{c['name']}: up at https://{c['apiserver_ip']}:6443 ({time.monotonic() - t0:.0f}s)")
        except Exception as e:  # noqa: BLE001 - collected and reported below
            errors.append(f"{c['name']}: {e}")

    threads = [threading.Thread(target=bring_up, args=(c,)) for c in clusters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        for e in errors:
            log(f"ERROR {e}")
        log(f"logs: {root}/<cluster>/logs/")
        return 1
    elapsed = time.monotonic() - t0
    st["up_seconds"] = round(elapsed, 1)
    (root / "lab.json").write_text(json.dumps(st, indent=2) + "\n")
    log(f"{len(clusters)} clusters up in {elapsed:.1f}s")
    for c in clusters:
        log(f"  {c['name']}: kubectl --kubeconfig {root / 'kubeconfigs' / (c['name'] + '.yaml')} get nodes")
    return 0


def cmd_down(args) -> int:
    root = state_dir()
    st = load_state(root)
    if st:
        # Clients and API servers first, etcd last (an API server whose etcd is gone spends
        # its grace period retrying). Within a phase, signal all and then wait, so the
        # graceful shutdowns overlap; the data is thrown away, so the grace period is short.
        # The pod runner stops the Pods it runs itself; whatever is left of them is killed below.
        for phase, grace in ((["pod-runner"], 15), ([x for x in reversed(COMPONENTS) if x not in ("etcd", "pod-runner")], 5),
                             (["etcd"], 5)):
            targets = [(root / c["name"] / "pids" / f"{comp}.pid", comp_needle(comp))
                       for c in st["clusters"] for comp in phase]
            for pidfile, needle in targets:
                pid = pid_alive(pidfile, needle)
                if pid:
                    os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(pid_alive(p, n) for p, n in targets):
                time.sleep(0.1)
            for pidfile, needle in targets:
                pid = pid_alive(pidfile, needle)
                if pid:
                    os.kill(pid, signal.SIGKILL)
                pidfile.unlink(missing_ok=True)
    if st:
        for c in st["clusters"]:
            podrunner.cleanup_leftovers(root, c["name"])
    if netns_exists():
        # Anything still inside our namespace was started by the lab.
        for pid in sh("ip", "netns", "pids", NETNS, check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
    remove_network()
    if st:
        for c in st["clusters"]:
            # Fresh etcd on every up: no state leaks from one test session into the next.
            shutil.rmtree(root / c["name"] / "etcd", ignore_errors=True)
        (root / "lab.json").unlink(missing_ok=True)
    log("down")
    return 0


def cmd_status(args) -> int:
    root = state_dir()
    st = load_state(root)
    if not st:
        log("lab is not up (no state); run `make lab-up`")
        return 3
    rc = 0
    if not netns_exists():
        log(f"network namespace {NETNS} is missing")
        rc = 1
    problems = component_health(root, st)
    for cluster, comp, why in problems:
        log(f"{cluster}: {comp} {why} (log: {root / cluster / 'logs' / (comp + '.log')})")
        rc = 1
    for cluster, what, why in pod_health(root, st):
        log(f"{cluster}: Pod {what} {why}")
        rc = 1
    for c in st["clusters"]:
        total = 0
        for comp in COMPONENTS:
            pid = pid_alive(root / c["name"] / "pids" / f"{comp}.pid", comp_needle(comp))
            total += rss_kib(pid) if pid else 0
        pods_rss, real_pods = 0, 0
        f = root / c["name"] / "pods.json"
        for pod in (json.loads(f.read_text()).get("pods", []) if f.exists() else []):
            real_pods += 1
            pods_rss += sum(rss_kib(x["pid"]) for x in pod["containers"] if x["pid"] and Path(f"/proc/{x['pid']}").exists())
        ready = "-"
        if not any(p[0] == c["name"] and p[1] == "kube-apiserver" for p in problems):
            try:
                ready = Api(root / "kubeconfigs" / f"{c['name']}.yaml").call("GET", "/readyz", timeout=10)
            except Exception as e:  # noqa: BLE001 - reported, not raised
                ready, rc = f"error: {e}", 1
        log(f"{c['name']}: apiserver https://{c['apiserver_ip']}:6443 readyz={ready} "
            f"rss={total / 1024:.0f}MiB real-pods={real_pods} ({pods_rss / 1024:.0f}MiB) "
            f"pods={c['pod_cidr']} svc={c['service_cidr']}")
    if rc == 0:
        log(f"all {len(st['clusters'])} clusters healthy (up in {st.get('up_seconds')}s)")
    return rc


def cmd_env(args) -> int:
    """Print the lab description (JSON) that tests and tooling read."""
    root = state_dir()
    st = load_state(root) or {"clusters": plan(args.clusters)}
    for c in st["clusters"]:
        c["kubeconfig"] = str(root / "kubeconfigs" / f"{c['name']}.yaml")
        c["ca_file"] = str(root / c["name"] / "pki" / "ca.crt")
    st["state_dir"] = str(root)
    print(json.dumps(st, indent=2))
    return 0


def _cluster(root: Path, name: str) -> tuple[dict, dict]:
    st = load_state(root)
    if not st:
        raise SystemExit("lab is not up")
    for c in st["clusters"]:
        if c["name"] == name:
            return st, c
    raise SystemExit(f"no cluster {name}")


def cmd_stop_apiserver(args) -> int:
    root = state_dir()
    st, c = _cluster(root, args.cluster)
    stop_process(root, c["name"], "kube-apiserver")
    st.setdefault("stopped", {})[c["name"]] = ["kube-apiserver"]
    (root / "lab.json").write_text(json.dumps(st, indent=2) + "\n")
    log(f"{c['name']}: kube-apiserver stopped")
    return 0


def cmd_start_apiserver(args) -> int:
    root = state_dir()
    st, c = _cluster(root, args.cluster)
    start_process(root, c["name"], "kube-apiserver", command_for(root, Path(st["bin_dir"]), c, "kube-apiserver"))
    wait_ready(Api(root / "kubeconfigs" / f"{c['name']}.yaml"), 120, f"{c['name']} kube-apiserver")
    # Components that gave up while the API server was away (kube-controller-manager exits when
    # it cannot build its controllers) come back, as a kubelet restarts static Pods.
    for comp in COMPONENTS[2:]:
        if not pid_alive(root / c["name"] / "pids" / f"{comp}.pid", comp_needle(comp)):
            start_process(root, c["name"], comp, command_for(root, Path(st["bin_dir"]), c, comp))
            log(f"{c['name']}: {comp} restarted")
    st.get("stopped", {}).pop(c["name"], None)
    (root / "lab.json").write_text(json.dumps(st, indent=2) + "\n")
    log(f"{c['name']}: kube-apiserver started")
    return 0


# --------------------------------------------------------------------------- NodePort forwarder

def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Listener:
    def __init__(self, bind: tuple[str, int], target: tuple[str, int]):
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(bind)
        self.sock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                conn.close()
                continue
            threading.Thread(target=_pump, args=(conn, upstream), daemon=True).start()
            threading.Thread(target=_pump, args=(upstream, conn), daemon=True).start()

    def close(self) -> None:
        # shutdown() wakes the thread blocked in accept(); a bare close() would leave the port bound
        # until that accept returned, and the next target of the nodePort could not listen on it.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def desired_forwards(api: Api, node_ips: set[str]) -> dict[int, tuple[str, int]]:
    """NodePort -> (address, port) of a ready endpoint: a node IP (a host-network Pod such as the
    API server) before a Pod IP (a Pod the lab runs for real, see podrunner.py)."""
    services = api.call("GET", "/api/v1/services")["items"]
    slices = api.call("GET", "/apis/discovery.k8s.io/v1/endpointslices")["items"]
    out: dict[int, tuple[str, int]] = {}
    for svc in services:
        if svc["spec"].get("type") not in ("NodePort", "LoadBalancer"):
            continue
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        mine = [s for s in slices if s["metadata"]["namespace"] == ns
                and s["metadata"].get("labels", {}).get("kubernetes.io/service-name") == name]
        for port in svc["spec"].get("ports", []):
            if not port.get("nodePort") or port.get("protocol", "TCP") != "TCP":
                continue
            for s in mine:
                eport = next((p["port"] for p in s.get("ports") or [] if p.get("name", "") == port.get("name", "")), None)
                ready = [a for ep in s.get("endpoints") or [] if ep.get("conditions", {}).get("ready") is not False
                         for a in ep.get("addresses", [])]
                for addr in sorted(ready, key=lambda a: (a not in node_ips, a)):
                    if eport and port["nodePort"] not in out:
                        out[port["nodePort"]] = (addr, eport)
    return out


def has_listener(target: tuple[str, int]) -> bool:
    try:
        socket.create_connection(target, timeout=0.5).close()
        return True
    except OSError:
        return False


def cmd_forwarder(args) -> int:
    """Inside the namespace: open <every node IP>:<nodePort> for each NodePort Service whose
    endpoint has a real listener (the API server, a Pod the lab runs), as kube-proxy would."""
    root = state_dir()
    _, c = _cluster(root, args.cluster)
    api = Api(root / c["name"] / "nodeport-forwarder.kubeconfig")
    node_ips = {n["ip"] for n in c["nodes"]}
    active: dict[int, tuple[tuple[str, int], list[Listener]]] = {}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        try:
            # A forward whose target is unchanged stays open: a probe that times out on a busy machine
            # must not close a working forward (a client would see "connection refused" meanwhile).
            want = {p: t for p, t in desired_forwards(api, node_ips).items()
                    if (p in active and active[p][0] == t) or has_listener(t)}
        except Exception as e:  # noqa: BLE001 - API server may be stopped on purpose; retry
            print(f"forwarder: {e}", flush=True)
            time.sleep(2)
            continue
        for port in list(active):
            if active[port][0] != want.get(port):
                for lst in active.pop(port)[1]:
                    lst.close()
                print(f"forwarder: closed :{port}", flush=True)
        for port, target in want.items():
            if port not in active:
                try:
                    active[port] = (target, [Listener((ip, port), target) for ip in sorted(node_ips)])
                    print(f"forwarder: :{port} on {sorted(node_ips)} -> {target[0]}:{target[1]}", flush=True)
                except OSError as e:
                    print(f"forwarder: cannot listen on :{port}: {e}", flush=True)
        time.sleep(1)


def cmd_pod_runner(args) -> int:
    """Inside the namespace: run the Pods whose images the lab has built (podrunner.py)."""
    root = state_dir()
    st, c = _cluster(root, args.cluster)
    build = Path(st["bin_dir"]).parent
    images = json.loads((build / "images.json").read_text()) if (build / "images.json").exists() else {}
    runner = podrunner.Runner(Api(root / c["name"] / "pod-runner.kubeconfig"), c, root, images,
                              build / "cilium-crds", str(Path(__file__).resolve()),
                              lambda *a, check=True: sh(*a, check=check))
    print(f"pod-runner: images {sorted(images)}", flush=True)
    return podrunner.run_forever(runner)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("up", "down", "status", "env"):
        p = sub.add_parser(name)
        p.add_argument("--clusters", type=int, default=int(os.environ.get("CLUSTERS") or DEFAULT_CLUSTERS))
    for name in ("stop-apiserver", "start-apiserver", "_forwarder", "_pod_runner"):
        sub.add_parser(name).add_argument("cluster")
    sub.add_parser("_container").add_argument("spec")
    p = sub.add_parser("_pause")
    p.add_argument("cluster")
    p.add_argument("pod")
    args = ap.parse_args()
    if len(HOST_IF) > 15 or not NET_PREFIX.count(".") == 1:
        raise SystemExit("LAB_NETNS must be at most 14 characters and LAB_NET_PREFIX look like 172.30")
    if args.cmd in ("up", "down", "stop-apiserver", "start-apiserver") and os.geteuid() != 0:
        raise SystemExit("the lab needs root: it creates a network namespace")
    if not 1 <= getattr(args, "clusters", 1) <= 254:  # x.255.0/30 is the veth pair
        raise SystemExit("--clusters must be 1..254")
    return {"up": cmd_up, "down": cmd_down, "status": cmd_status, "env": cmd_env,
            "stop-apiserver": cmd_stop_apiserver, "start-apiserver": cmd_start_apiserver,
            "_forwarder": cmd_forwarder, "_pod_runner": cmd_pod_runner,
            "_container": lambda a: podrunner.run_container(a.spec), "_pause": lambda a: podrunner.run_pause(),
            }[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
