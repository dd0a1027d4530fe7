"""Kubelet stand-in for the Pods whose images the lab can run for real.

kwok simulates every Pod of a lab cluster: it schedules them, gives them an IP from the node's
podCIDR and reports them Running, but runs nothing. For the Pods whose container images the lab
has built (images.json, written by build.py: clustermesh-apiserver, istiod's pilot), this runner
does what a kubelet and a CNI plugin would:

- a sandbox per Pod: a network namespace held by a pause process, with the Pod's IP on eth0
  and a veth to the lab namespace, where a /32 route makes the Pod IP reachable (the API
  server's pod proxy, the NodePort forwarder) while the rest of the Pod CIDR stays unreachable;
- the Pod's volumes (Secret, ConfigMap, projected ServiceAccount tokens, downward API,
  emptyDir) written as kubelet writes them (``..data`` swapped atomically on every change);
- every container, init containers first, with the command, args and environment of the Pod
  spec ($(VAR) expansion, configMapKeyRef, secretKeyRef, fieldRef, resourceFieldRef), in a
  private mount namespace whose root holds the image's files and the volume mounts at the paths
  of the spec, restarted with back-off when it exits (restartPolicy Always).

Nothing of the components' configuration is written here: it all comes from the Pod spec and
the objects it references, so a wrong value written by a role reaches the real component.

Where an agent would create objects (CiliumNode per node, the Cilium CRDs the operator
installs) the runner creates them when the chart's Pods for that agent are scheduled.

The runner reports what it runs in <state>/<cluster>/pods.json (``lab.py status`` reads it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

LOOP_SECONDS = 2
# Back-off between restarts of a container that exited (kubelet: 10 s doubling to 5 min).
BACKOFF_FIRST, BACKOFF_MAX = 5.0, 40.0
# A container that ran this long without exiting gets its back-off reset.
BACKOFF_RESET_AFTER = 60.0
TOKEN_REFRESH_SECONDS = 1800
# Volumes are re-read this often once every container runs (kubelet: about a minute); until then,
# at every loop. Each re-read is a GET per object on a two-core machine shared by four clusters.
VOLUME_SYNC_SECONDS = 10
# The address of the lab side of every Pod's veth (as Calico does with 169.254.1.1).
GATEWAY = "169.254.1.1"
PATH_DEFAULT = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def log(msg: str) -> None:
    print(f"pod-runner: {msg}", flush=True)


def image_name(image: str) -> str:
    """``quay.io/cilium/clustermesh-apiserver:v1.20.2@sha256:...`` -> ``clustermesh-apiserver``."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def image_tag(image: str) -> str:
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def _version_key(v: str) -> str:
    return v.lstrip("v")


# --------------------------------------------------------------------------- values

def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known names are replaced, $$ escapes, unknown stay."""
    def repl(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", repl, value)


def field_value(pod: dict, path: str) -> str:
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status", {})
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    simple = {
        "metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""), "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.hostIP": status.get("hostIP", ""), "status.podIP": status.get("podIP", ""),
        "status.podIPs": ",".join(i["ip"] for i in status.get("podIPs") or []),
    }
    if path not in simple:
        raise LookupError(f"fieldRef {path} is not supported by the lab")
    return simple[path]


def _quantity(q: str) -> float:
    units = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(q))
    if not m:
        raise ValueError(f"bad quantity {q!r}")
    return float(m.group(1)) * units.get(m.group(2), 1)


def resource_value(container: dict, node_allocatable: dict, ref: dict) -> str:
    """resourceFieldRef as kubelet resolves it: a missing limit is the node's allocatable."""
    kind, _, res = ref["resource"].partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(res)
    if value is None:
        value = node_allocatable.get(res, "0") if kind == "limits" else "0"
    divisor = _quantity(ref.get("divisor") or "1")
    n = _quantity(value) / divisor
    # Kubernetes rounds up (a 500m CPU limit is GOMAXPROCS=1).
    return str(max(int(-(-n // 1)), 1 if res == "cpu" and kind == "limits" else 0))


# --------------------------------------------------------------------------- volumes

class NotReady(Exception):
    """A volume or an environment source is missing: the container waits, as on a kubelet."""


def write_atomic_volume(vol: Path, files: dict[str, tuple[bytes, int]]) -> bool:
    """Write ``files`` (path -> (content, mode)) the way kubelet's atomic writer does: a
    timestamped directory, ``..data`` pointing at it, top-level symlinks through ``..data``.
    Returns whether anything changed."""
    digest = hashlib.sha256(json.dumps({k: [base64.b64encode(v[0]).decode(), v[1]] for k, v in sorted(files.items())})
                            .encode()).hexdigest()[:16]
    vol.mkdir(parents=True, exist_ok=True)
    data = vol / "..data"
    current = os.readlink(data) if data.is_symlink() else None
    if current == f"..{digest}":
        return False
    new = vol / f"..{digest}"
    if new.exists():
        shutil.rmtree(new)
    new.mkdir()
    for rel, (content, mode) in files.items():
        target = new / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.chmod(target, mode)
    tmp = vol / "..data_tmp"
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(new.name, tmp)
    os.replace(tmp, data)
    tops = {rel.split("/", 1)[0] for rel in files}
    for entry in vol.iterdir():
        if not entry.name.startswith("..") and entry.name not in tops:
            entry.unlink()
    for top in tops:
        link = vol / top
        if not link.is_symlink():
            os.symlink(f"..data/{top}", link)
    if current and (vol / current).exists():
        shutil.rmtree(vol / current)
    return True


class Volumes:
    """Resolves a Pod's volumes to files, with the cluster's API."""

    def __init__(self, api, pod: dict, tokens: dict):
        self.api, self.pod, self.tokens = api, pod, tokens
        self.ns = pod["metadata"]["namespace"]

    def _get(self, kind: str, name: str, optional: bool) -> dict | None:
        try:
            return self.api.call("GET", f"/api/v1/namespaces/{self.ns}/{kind}/{name}")
        except urllib.error.HTTPError as e:
            if e.code == 404:
                if optional:
                    return None
                raise NotReady(f"{kind[:-1]} {self.ns}/{name} not found") from e
            raise

    def _keys(self, obj: dict | None, binary: bool) -> dict[str, bytes]:
        if obj is None:
            return {}
        out: dict[str, bytes] = {}
        if binary:
            out.update({k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()})
        else:
            out.update({k: v.encode() for k, v in (obj.get("data") or {}).items()})
            out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        return out

    def _items(self, keys: dict[str, bytes], items: list | None, mode: int, what: str,
               optional: bool) -> dict[str, tuple[bytes, int]]:
        if not items:
            return {k: (v, mode) for k, v in keys.items()}
        out = {}
        for it in items:
            if it["key"] not in keys:
                if optional:
                    continue
                raise NotReady(f"{what} has no key {it['key']}")
            out[it["path"]] = (keys[it["key"]], it.get("mode", mode))
        return out

    def _object_files(self, kind: str, ref: dict, mode: int) -> dict[str, tuple[bytes, int]]:
        """The keys of a Secret or ConfigMap as files (``ref``: name, items, optional)."""
        optional = ref.get("optional", False)
        obj = self._get(kind, ref["name"], optional)
        return self._items(self._keys(obj, kind == "secrets"), ref.get("items"), mode,
                           f"{kind[:-1]} {ref['name']}", optional or obj is None)

    def token(self, sa: str, audience: str | None, seconds: int) -> bytes:
        key = (sa, audience or "", seconds)
        cached = self.tokens.get(key)
        if cached and time.monotonic() - cached[1] < TOKEN_REFRESH_SECONDS:
            return cached[0]
        meta = self.pod["metadata"]
        spec = {"expirationSeconds": seconds,
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}}
        if audience:
            spec["audiences"] = [audience]
        r = self.api.call("POST", f"/api/v1/namespaces/{self.ns}/serviceaccounts/{sa}/token",
                          {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
        tok = r["status"]["token"].encode()
        self.tokens[key] = (tok, time.monotonic())
        return tok

    def files(self, vol: dict) -> dict[str, tuple[bytes, int]] | None:
        """The files of one volume; None for an emptyDir (a plain directory)."""
        if "emptyDir" in vol:
            return None
        if "secret" in vol:
            return self._object_files("secrets", dict(vol["secret"], name=vol["secret"]["secretName"]),
                                      vol["secret"].get("defaultMode", 0o644))
        if "configMap" in vol:
            return self._object_files("configmaps", vol["configMap"], vol["configMap"].get("defaultMode", 0o644))
        if "downwardAPI" in vol:
            d = vol["downwardAPI"]
            return {it["path"]: (field_value(self.pod, it["fieldRef"]["fieldPath"]).encode(),
                                 it.get("mode", d.get("defaultMode", 0o644))) for it in d.get("items", [])}
        if "projected" in vol:
            p = vol["projected"]
            mode = p.get("defaultMode", 0o644)
            out: dict[str, tuple[bytes, int]] = {}
            for src in p.get("sources", []):
                if "secret" in src:
                    out.update(self._object_files("secrets", src["secret"], mode))
                elif "configMap" in src:
                    out.update(self._object_files("configmaps", src["configMap"], mode))
                elif "serviceAccountToken" in src:
                    t = src["serviceAccountToken"]
                    sa = self.pod["spec"].get("serviceAccountName") or "default"
                    out[t["path"]] = (self.token(sa, t.get("audience"), t.get("expirationSeconds", 3600)), mode)
                elif "downwardAPI" in src:
                    for it in src["downwardAPI"].get("items", []):
                        out[it["path"]] = (field_value(self.pod, it["fieldRef"]["fieldPath"]).encode(),
                                           it.get("mode", mode))
            return out
        # hostPath and the rest: an empty directory, never the host's files.
        return None


def container_env(api, pod: dict, c: dict, node_allocatable: dict, apiserver: tuple[str, int]) -> dict[str, str]:
    ns = pod["metadata"]["namespace"]
    env: dict[str, str] = {"PATH": PATH_DEFAULT, "HOME": "/root", "HOSTNAME": pod["metadata"]["name"],
                           # kube-proxy's part: the kubernetes Service, as the lab's API server.
                           "KUBERNETES_SERVICE_HOST": apiserver[0], "KUBERNETES_SERVICE_PORT": str(apiserver[1]),
                           "KUBERNETES_SERVICE_PORT_HTTPS": str(apiserver[1]),
                           "KUBERNETES_PORT": f"tcp://{apiserver[0]}:{apiserver[1]}"}

    def get(kind: str, name: str, optional: bool) -> dict | None:
        try:
            return api.call("GET", f"/api/v1/namespaces/{ns}/{kind}/{name}")
        except urllib.error.HTTPError as e:
            if e.code == 404 and optional:
                return None
            raise NotReady(f"{kind[:-1]} {ns}/{name}: {e.code}") from e

    def data(obj: dict | None, binary: bool) -> dict[str, str]:
        if obj is None:
            return {}
        raw = obj.get("data") or {}
        return {k: base64.b64decode(v).decode() for k, v in raw.items()} if binary else dict(raw)

    for src in c.get("envFrom") or []:
        prefix = src.get("prefix", "")
        if "configMapRef" in src:
            r = src["configMapRef"]
            env.update({prefix + k: v for k, v in data(get("configmaps", r["name"], r.get("optional", False)), False).items()})
        if "secretRef" in src:
            r = src["secretRef"]
            env.update({prefix + k: v for k, v in data(get("secrets", r["name"], r.get("optional", False)), True).items()})
    for e in c.get("env") or []:
        if "valueFrom" not in e:
            env[e["name"]] = expand(e.get("value", ""), env)
            continue
        vf = e["valueFrom"]
        if "fieldRef" in vf:
            env[e["name"]] = field_value(pod, vf["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in vf:
            env[e["name"]] = resource_value(c, node_allocatable, vf["resourceFieldRef"])
        elif "configMapKeyRef" in vf or "secretKeyRef" in vf:
            binary = "secretKeyRef" in vf
            r = vf["secretKeyRef" if binary else "configMapKeyRef"]
            values = data(get("secrets" if binary else "configmaps", r["name"], r.get("optional", False)), binary)
            if r["key"] in values:
                env[e["name"]] = values[r["key"]]
            elif not r.get("optional", False):
                raise NotReady(f"{'secret' if binary else 'configmap'} {ns}/{r['name']} has no key {r['key']}")
    return env


# --------------------------------------------------------------------------- processes

def _alive(pid: int, needle: str) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return needle in cmd and stat.rsplit(")", 1)[1].split()[0] != "Z"


def kill_group(proc: subprocess.Popen, grace: float) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


class Container:
    def __init__(self, spec: dict, init: bool):
        self.spec, self.init = spec, init
        self.name = spec["name"]
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self.exit_code: int | None = None
        self.started_at = 0.0
        self.next_start = 0.0
        self.waiting = ""
        self.done = False  # an init container that exited 0


class Sandbox:
    """One Pod: the pause process holding its network namespace, its volumes, its containers."""

    def __init__(self, runner: "Runner", pod: dict):
        self.runner, self.pod = runner, pod
        meta = pod["metadata"]
        self.uid, self.key = meta["uid"], f"{meta['namespace']}/{meta['name']}"
        self.ip = pod["status"]["podIP"]
        self.host_ip = pod["status"].get("hostIP") or runner.node_ips.get(pod["spec"]["nodeName"], "")
        self.dir = runner.root / runner.cluster["name"] / "pods" / f"{meta['namespace']}_{meta['name']}_{self.uid[:8]}"
        self.veth = "mcp" + hashlib.sha256(self.uid.encode()).hexdigest()[:10]
        self.pause: subprocess.Popen | None = None
        self.tokens: dict = {}
        self.inits = [Container(c, True) for c in pod["spec"].get("initContainers") or []]
        self.containers = [Container(c, False) for c in pod["spec"].get("containers") or []]
        self.problem = ""
        self.volumes_synced_at = 0.0

    # -- network
    def start(self) -> None:
        for sub in ("volumes", "logs", "run", "containers"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.pause = subprocess.Popen(
            ["unshare", "--net", "--", sys.executable, self.runner.lab_py, "_pause", self.runner.cluster["name"], self.key],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if os.readlink(f"/proc/{self.pause.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                    break
            except OSError:
                pass
            time.sleep(0.05)
        pid = str(self.pause.pid)
        (self.dir / "run" / "pause.pid").write_text(pid + "\n")
        sh = self.runner.sh
        inside = ("nsenter", f"--net=/proc/{pid}/ns/net", "--")
        sh("ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", pid)
        sh(*inside, "ip", "link", "set", "lo", "up")
        sh(*inside, "ip", "addr", "add", f"{self.ip}/32", "dev", "eth0")
        sh(*inside, "ip", "link", "set", "eth0", "up")
        sh(*inside, "ip", "route", "add", GATEWAY, "dev", "eth0", "scope", "link")
        sh(*inside, "ip", "route", "add", "default", "via", GATEWAY, "dev", "eth0")
        sh("ip", "addr", "replace", f"{GATEWAY}/32", "dev", self.veth)
        sh("ip", "link", "set", self.veth, "up")
        # Traffic from the node to its Pod leaves from the node's IP, as on a real node.
        route = ["ip", "route", "replace", f"{self.ip}/32", "dev", self.veth]
        sh(*(route + (["src", self.host_ip] if self.host_ip else [])))
        log(f"{self.key}: sandbox up, {self.ip} on {self.veth}")

    def stop(self) -> None:
        grace = min(float(self.pod["spec"].get("terminationGracePeriodSeconds") or 5), 5.0)
        for c in self.containers + self.inits:
            if c.proc:
                kill_group(c.proc, grace)
        if self.pause:
            kill_group(self.pause, 2)
        self.runner.sh("ip", "link", "del", self.veth, check=False)
        for sub in ("volumes", "containers", "run"):
            shutil.rmtree(self.dir / sub, ignore_errors=True)
        log(f"{self.key}: stopped")

    # -- volumes
    def sync_volumes(self) -> None:
        vols = Volumes(self.runner.api, self.pod, self.tokens)
        for vol in self.pod["spec"].get("volumes") or []:
            files = vols.files(vol)
            path = self.dir / "volumes" / vol["name"]
            if files is None:
                path.mkdir(parents=True, exist_ok=True)
            elif write_atomic_volume(path, files):
                log(f"{self.key}: volume {vol['name']} written ({len(files)} files)")

    # -- containers
    def _launch(self, c: Container) -> None:
        image = self.runner.images[image_name(c.spec["image"])]
        env = container_env(self.runner.api, self.pod, c.spec, self.runner.allocatable, self.runner.apiserver)
        argv = [expand(a, env) for a in (c.spec.get("command") or image["entrypoint"])]
        argv += [expand(a, env) for a in c.spec.get("args") or []]
        mounts = []
        for m in c.spec.get("volumeMounts") or []:
            src = self.dir / "volumes" / m["name"]
            if m.get("subPath"):
                src = src / m["subPath"]
            mounts.append({"source": str(src), "target": m["mountPath"], "readOnly": bool(m.get("readOnly"))})
        hosts = [f"127.0.0.1\tlocalhost", f"::1\tlocalhost ip6-localhost ip6-loopback",
                 f"{self.ip}\t{self.pod['metadata']['name']}"]
        for a in self.pod["spec"].get("hostAliases") or []:
            hosts.append(f"{a['ip']}\t{' '.join(a.get('hostnames') or [])}")
        spec = {"root": str(self.dir / "containers" / c.name / "root"), "argv": argv, "env": env,
                "cwd": c.spec.get("workingDir") or "/", "image_files": image["files"], "mounts": mounts,
                "hosts": "\n".join(hosts) + "\n", "hostname": self.pod["metadata"]["name"]}
        spec_path = self.dir / "run" / f"{c.name}.json"
        fd = os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # env may hold secrets
        with os.fdopen(fd, "w") as f:
            json.dump(spec, f)
        (self.dir / "containers" / c.name / "root").mkdir(parents=True, exist_ok=True)
        logf = open(self.dir / "logs" / f"{c.name}.log", "ab")  # noqa: SIM115 - handed to the child
        logf.write(f"==== {time.strftime('%H:%M:%S')} start #{c.restarts}: {' '.join(argv)}\n".encode())
        logf.flush()
        c.proc = subprocess.Popen(
            ["nsenter", f"--net=/proc/{self.pause.pid}/ns/net", "--", "unshare", "--mount", "--propagation", "private",
             "--", sys.executable, self.runner.lab_py, "_container", str(spec_path)],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        (self.dir / "run" / f"{c.name}.pid").write_text(f"{c.proc.pid} {argv[0]}\n")
        c.started_at, c.exit_code, c.waiting = time.monotonic(), None, ""

    def _step(self, c: Container) -> bool:
        """Advance one container; True when it runs (or, for an init container, finished)."""
        if c.done:
            return True
        if c.proc and c.proc.poll() is None:
            if time.monotonic() - c.started_at > BACKOFF_RESET_AFTER:
                c.next_start = 0.0
            return not c.init
        if c.proc:
            c.exit_code = c.proc.returncode
            c.proc = None
            if c.init and c.exit_code == 0:
                c.done = True
                return True
            ran = time.monotonic() - c.started_at
            delay = BACKOFF_FIRST if ran > BACKOFF_RESET_AFTER else min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(c.restarts, 6))
            c.next_start = time.monotonic() + delay
            c.restarts += 1
            log(f"{self.key}: container {c.name} exited {c.exit_code}; restart in {delay:.0f}s")
        if time.monotonic() < c.next_start:
            return False
        try:
            self._launch(c)
        except NotReady as e:
            c.waiting = str(e)
            c.next_start = time.monotonic() + LOOP_SECONDS
            return False
        return not c.init

    def sync(self) -> None:
        running = all(c.done for c in self.inits) and all(
            c.proc and c.proc.poll() is None for c in self.containers if image_name(c.spec["image"]) in self.runner.images)
        if not running or time.monotonic() - self.volumes_synced_at >= VOLUME_SYNC_SECONDS:
            try:
                self.sync_volumes()
                self.volumes_synced_at = time.monotonic()
                self.problem = ""
            except NotReady as e:
                self.problem = str(e)
                if not any(c.proc for c in self.containers + self.inits):
                    return
        self._step_containers()

    def _step_containers(self) -> None:
        for c in self.inits:
            if not self._step(c):
                return
        for c in self.containers:
            if image_name(c.spec["image"]) in self.runner.images:
                self._step(c)
            else:
                c.waiting = f"the lab has no binary for image {c.spec['image']}"

    def report(self) -> dict:
        def one(c: Container) -> dict:
            state = "running" if c.proc and c.proc.poll() is None else ("completed" if c.done else "waiting")
            return {"name": c.name, "init": c.init, "state": state, "restarts": c.restarts, "last_exit_code": c.exit_code,
                    "waiting": c.waiting, "pid": c.proc.pid if c.proc and c.proc.poll() is None else None,
                    "image": c.spec["image"], "log": str(self.dir / "logs" / f"{c.name}.log")}
        return {"pod": self.key, "uid": self.uid, "ip": self.ip, "node": self.pod["spec"]["nodeName"],
                # `nsenter --net=/proc/<pause_pid>/ns/net` runs a command in the Pod's network, as exec would.
                "pause_pid": self.pause.pid if self.pause and self.pause.poll() is None else None,
                "problem": self.problem, "containers": [one(c) for c in self.inits + self.containers],
                "version_note": self.runner.version_note(self.pod)}


class Runner:
    def __init__(self, api, cluster: dict, root: Path, images: dict, crds_dir: Path, lab_py: str, sh):
        self.api, self.cluster, self.root, self.images = api, cluster, root, images
        self.crds_dir, self.lab_py, self.sh = crds_dir, lab_py, sh
        self.node_ips = {n["name"]: n["ip"] for n in cluster["nodes"]}
        self.apiserver = (cluster["apiserver_ip"], 6443)
        self.allocatable: dict = {}
        self.sandboxes: dict[str, Sandbox] = {}
        self.crds_applied = False
        self.cilium_nodes: set[str] = set()

    def version_note(self, pod: dict) -> str:
        notes = []
        for c in pod["spec"].get("containers") or []:
            img = self.images.get(image_name(c["image"]))
            if img and image_tag(c["image"]) and _version_key(image_tag(c["image"])) != _version_key(img["version"]):
                notes.append(f"{c['name']}: image {image_tag(c['image'])} runs the lab's {img['version']}")
        return "; ".join(sorted(set(notes)))

    def runnable(self, pod: dict) -> bool:
        names = [image_name(c["image"]) for c in pod["spec"].get("containers") or []]
        return any(n in self.images for n in names)

    def agent_actions(self, pods: list[dict]) -> None:
        """What cilium-operator and the agents would create, once the chart has scheduled them."""
        names = {(image_name(c["image"]), p["spec"].get("nodeName")) for p in pods
                 for c in p["spec"].get("containers") or [] if not p["metadata"].get("deletionTimestamp")}
        if not self.crds_applied and any(n.startswith("operator") for n, _ in names):
            import yaml  # the lab runs with the project's virtualenv
            for f in sorted(self.crds_dir.glob("*.yaml")):
                crd = yaml.safe_load(f.read_text())
                try:
                    self.api.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
                except urllib.error.HTTPError as e:
                    if e.code != 409:
                        raise
            self.crds_applied = True
            log(f"cilium CRDs applied ({len(list(self.crds_dir.glob('*.yaml')))} files)")
        for n, node in names:
            if n != "cilium" or not node or node in self.cilium_nodes:
                continue
            k8s_node = self.api.call("GET", f"/api/v1/nodes/{node}")
            ip = next(a["address"] for a in k8s_node["status"]["addresses"] if a["type"] == "InternalIP")
            body = {"apiVersion": "cilium.io/v2", "kind": "CiliumNode",
                    "metadata": {"name": node, "labels": k8s_node["metadata"].get("labels", {}),
                                 "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node,
                                                      "uid": k8s_node["metadata"]["uid"]}]},
                    "spec": {"addresses": [{"type": "InternalIP", "ip": ip}],
                             "ipam": {"podCIDRs": k8s_node["spec"].get("podCIDRs") or []}}}
            try:
                self.api.call("POST", "/apis/cilium.io/v2/ciliumnodes", body)
            except urllib.error.HTTPError as e:
                if e.code == 404:
                    continue  # CRDs not there yet
                if e.code != 409:
                    raise
            self.cilium_nodes.add(node)
            log(f"CiliumNode {node} ({ip})")

    def sync_once(self) -> None:
        pods = self.api.call("GET", "/api/v1/pods")["items"]
        if not self.allocatable:
            nodes = self.api.call("GET", "/api/v1/nodes")["items"]
            if nodes:
                self.allocatable = nodes[0]["status"].get("allocatable", {})
        self.agent_actions(pods)
        want = {}
        for p in pods:
            st = p.get("status", {})
            if (self.runnable(p) and p["spec"].get("nodeName") and st.get("podIP")
                    and not p["metadata"].get("deletionTimestamp") and st.get("phase") not in ("Succeeded", "Failed")):
                want[p["metadata"]["uid"]] = p
        for uid in list(self.sandboxes):
            if uid not in want:
                self.sandboxes.pop(uid).stop()
        for uid, p in want.items():
            sb = self.sandboxes.get(uid)
            if sb is None:
                sb = Sandbox(self, p)
                try:
                    sb.start()
                except subprocess.CalledProcessError as e:
                    log(f"{sb.key}: sandbox failed: {e.stderr or e}")
                    sb.stop()
                    continue
                self.sandboxes[uid] = sb
            sb.pod = p
            sb.sync()
        self.write_report()

    def write_report(self) -> None:
        out = self.root / self.cluster["name"] / "pods.json"
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"updated": time.time(), "pods": [s.report() for s in self.sandboxes.values()]},
                                  indent=2) + "\n")
        os.replace(tmp, out)

    def stop_all(self) -> None:
        for sb in self.sandboxes.values():
            sb.stop()
        self.sandboxes.clear()
        self.write_report()


def cleanup_leftovers(root: Path, cluster: str) -> None:
    """Processes of an earlier runner of this cluster (it was killed): stop them."""
    for pidfile in (root / cluster / "pods").glob("*/run/*.pid"):
        try:
            pid_s, _, needle = pidfile.read_text().strip().partition(" ")
            pid = int(pid_s)
        except (OSError, ValueError):
            continue
        if _alive(pid, needle or "_pause"):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for d in (root / cluster / "pods").glob("*"):
        for sub in ("volumes", "containers", "run"):
            shutil.rmtree(d / sub, ignore_errors=True)


def run_forever(runner: Runner) -> int:
    stopping = {"now": False}

    def on_term(*_):
        stopping["now"] = True
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    cleanup_leftovers(runner.root, runner.cluster["name"])
    while not stopping["now"]:
        try:
            runner.sync_once()
        except Exception as e:  # noqa: BLE001 - the API server may be stopped on purpose; retry
            log(f"sync: {type(e).__name__}: {e}")
        for _ in range(int(LOOP_SECONDS * 10)):
            if stopping["now"]:
                break
            time.sleep(0.1)
    runner.stop_all()
    return 0


# --------------------------------------------------------------------------- inside the sandbox

def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def run_container(spec_path: str) -> int:
    """Runs in the Pod's network namespace and a private mount namespace: build the root from
    the image's files and the volume mounts, then chroot and exec the container's command."""
    spec = json.loads(Path(spec_path).read_text())
    root = Path(spec["root"])
    _mount("-t", "tmpfs", "-o", "mode=755", "tmpfs", str(root))
    for d in ("proc", "dev", "sys", "tmp", "etc", "root", "var/run", "run"):
        (root / d).mkdir(parents=True, exist_ok=True)
    _mount("--rbind", "/proc", str(root / "proc"))
    _mount("--rbind", "/dev", str(root / "dev"))
    _mount("--rbind", "/sys", str(root / "sys"))
    _mount("-t", "tmpfs", "tmpfs", str(root / "tmp"))
    (root / "etc" / "hosts").write_text(spec["hosts"])
    (root / "etc" / "hostname").write_text(spec["hostname"] + "\n")
    (root / "etc" / "resolv.conf").write_text("")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/sbin/nologin\n")
    if Path("/etc/ssl/certs").is_dir():
        (root / "etc" / "ssl" / "certs").mkdir(parents=True, exist_ok=True)
        _mount("--bind", "-o", "ro", "/etc/ssl/certs", str(root / "etc" / "ssl" / "certs"))

    def bind(src: str, target: str, read_only: bool) -> None:
        dest = root / target.lstrip("/")
        if Path(src).is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.touch(exist_ok=True)
        _mount("--bind", src, str(dest))
        if read_only:
            _mount("-o", "remount,bind,ro", str(dest))

    for target, src in spec["image_files"].items():
        bind(src, target, True)
    # Longer paths after shorter ones, so a mount inside another volume's path stays visible.
    for m in sorted(spec["mounts"], key=lambda m: m["target"].count("/")):
        if not Path(m["source"]).exists():
            Path(m["source"]).mkdir(parents=True)
        bind(m["source"], m["target"], m["readOnly"])
    os.chroot(root)
    os.chdir(spec["cwd"])
    argv = spec["argv"]
    exe = argv[0]
    if "/" not in exe:
        exe = next((f"{d}/{exe}" for d in spec["env"].get("PATH", PATH_DEFAULT).split(":")
                    if os.access(f"{d}/{exe}", os.X_OK)), exe)
    os.execve(exe, argv, spec["env"])
    return 127


def run_pause() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()
