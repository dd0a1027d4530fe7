#!/usr/bin/env python3
"""Build the lab's binaries and export its charts from pinned Go modules.

Everything lands in ~/.cache/multicloud-interconnect/lab/<hash>/ (hash of versions.env),
outside the checkout, so every clone on the machine shares one build. Each tool family is
its own Go module, generated here, because the k8s.io/kubernetes staging replaces would pin
the libraries that kwok and helm need at other versions.

Stdlib only: this runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSIONS_FILE = HERE / "versions.env"
# Bump when the way binaries are built changes, so the cache key changes with it.
BUILD_FORMAT = "1"
K8S_TOOLS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")


def log(msg: str) -> None:
    print(f"[lab-build] {msg}", flush=True)


def read_versions() -> dict[str, str]:
    out = {}
    for line in VERSIONS_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "multicloud-interconnect" / "lab"


# Pins of the binaries; the chart pins only trigger a new export into the same directory, so
# moving a chart to another version does not rebuild Kubernetes.
BINARY_PINS = ("K8S_", "ETCD_", "KWOK_", "HELM_")


def _pin_lines(binaries: bool) -> bytes:
    lines = [line.strip() for line in VERSIONS_FILE.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    return "\n".join(line for line in lines if line.startswith(BINARY_PINS) == binaries).encode()


def build_dir() -> Path:
    digest = hashlib.sha256(_pin_lines(binaries=True) + BUILD_FORMAT.encode()).hexdigest()[:12]
    return cache_root() / digest


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Fail clearly instead of fetching another toolchain when a module asks for a newer Go.
    env["GOTOOLCHAIN"] = "local"
    env["CGO_ENABLED"] = "0"
    env.setdefault("GOFLAGS", "-mod=mod")
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True,
        capture: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env or go_env(), check=check, text=True,
                          capture_output=capture)


def go_mod_download(mod: str, cwd: Path, env: dict[str, str] | None = None) -> dict:
    """Resolve and download one module; returns go's JSON (with "Error" on failure)."""
    p = run(["go", "mod", "download", "-json", mod], cwd, env=env, check=False, capture=True)
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError:
        return {"Error": (p.stderr or p.stdout).strip()}


def write_module(src: Path, module: str, body: str) -> None:
    src.mkdir(parents=True, exist_ok=True)
    (src / "go.mod").write_text(f"module {module}\n\ngo 1.26.0\n\n{body}")


def version_ldflags(pkg: str, version: str) -> list[str]:
    m = re.match(r"v(\d+)\.(\d+)\.\d+", version)
    assert m, version
    major, minor = m.groups()
    return [f"-X {pkg}.gitVersion={version}", f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}", f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z"]


def build_k8s(v: dict[str, str], root: Path, bindir: Path) -> None:
    ver = v["K8S_VERSION"]
    src = root / "src" / "k8s"
    src.mkdir(parents=True, exist_ok=True)
    info = go_mod_download(f"k8s.io/kubernetes@{ver}", src)
    if info.get("Error"):
        raise SystemExit(f"cannot resolve k8s.io/kubernetes@{ver}: {info['Error']}")
    upstream_mod = Path(info["GoMod"]).read_text()
    # k8s.io/kubernetes requires its staging modules at v0.0.0 and resolves them through
    # local replaces that are not published; map each to the matching v0.X.Y tag.
    staging = re.findall(r"^\s+(k8s\.io/[A-Za-z0-9._-]+) v0\.0\.0$", upstream_mod, re.M)
    godebug = re.findall(r"^godebug .*$", upstream_mod, re.M)
    minor_tag = "v0." + ver[len("v1."):]
    body = "\n".join(godebug) + "\n\n" if godebug else ""
    body += f"require k8s.io/kubernetes {ver}\n\nreplace (\n"
    body += "".join(f"\t{m} => {m} {minor_tag}\n" for m in staging)
    body += ")\n\ntool (\n" + "".join(f"\tk8s.io/kubernetes/cmd/{t}\n" for t in K8S_TOOLS) + ")\n"
    write_module(src, "lab.invalid/k8s", body)
    log(f"k8s {ver}: {len(staging)} staging modules replaced with {minor_tag}")
    run(["go", "mod", "tidy"], src)
    ld = version_ldflags("k8s.io/component-base/version", ver)
    ld += version_ldflags("k8s.io/client-go/pkg/version", ver)
    run(["go", "build", "-trimpath", "-tags", "selinux,notest,grpcnotrace",
         "-ldflags", "-s -w " + " ".join(ld), "-o", str(bindir) + "/"]
        + [f"k8s.io/kubernetes/cmd/{t}" for t in K8S_TOOLS], src)


def build_etcd(v: dict[str, str], root: Path, bindir: Path) -> None:
    src = root / "src" / "etcd"
    # server/v3's module root is package main; its own relative replaces only apply when it
    # is the main module, so a consumer module builds it from the published siblings.
    write_module(src, "lab.invalid/etcd",
                 f"require go.etcd.io/etcd/server/v3 {v['ETCD_VERSION']}\n\n"
                 "tool go.etcd.io/etcd/server/v3\n")
    run(["go", "mod", "tidy"], src)
    run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(bindir / "etcd"),
         "go.etcd.io/etcd/server/v3"], src)


def build_etcdctl(v: dict[str, str], root: Path, bindir: Path) -> None:
    """etcdctl, for tests that read what a clustermesh-apiserver's etcd holds."""
    src = root / "src" / "etcdctl"
    write_module(src, "lab.invalid/etcdctl",
                 f"require go.etcd.io/etcd/etcdctl/v3 {v['ETCD_VERSION']}\n\ntool go.etcd.io/etcd/etcdctl/v3\n")
    run(["go", "mod", "tidy"], src)
    run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(bindir / "etcdctl"), "go.etcd.io/etcd/etcdctl/v3"], src)


def build_kwok(v: dict[str, str], root: Path, bindir: Path) -> None:
    src = root / "src" / "kwok"
    write_module(src, "lab.invalid/kwok",
                 f"require sigs.k8s.io/kwok {v['KWOK_VERSION']}\n\n"
                 "tool (\n\tsigs.k8s.io/kwok/cmd/kwok\n\tsigs.k8s.io/kwok/cmd/kwokctl\n)\n")
    stages = src / "kwok-stages"
    stages.mkdir(exist_ok=True)
    shutil.copy2(HERE / "kwok-stages" / "main.go", stages / "main.go")
    run(["go", "mod", "tidy"], src)
    run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(bindir) + "/",
         "sigs.k8s.io/kwok/cmd/kwok", "sigs.k8s.io/kwok/cmd/kwokctl"], src)
    run(["go", "run", "./kwok-stages", str(root / "kwok-stages.yaml")], src)


def build_helm(v: dict[str, str], root: Path, bindir: Path) -> None:
    ver = v["HELM_VERSION"]
    src = root / "src" / "helm"
    write_module(src, "lab.invalid/helm", f"require helm.sh/helm/v3 {ver}\n\ntool helm.sh/helm/v3/cmd/helm\n")
    run(["go", "mod", "tidy"], src)
    k8s_major, k8s_minor = re.match(r"v(\d+)\.(\d+)", v["K8S_VERSION"]).groups()
    # Without these, `helm version` lacks the patch level and `helm template` assumes
    # Kubernetes 1.20, which fails charts gated on newer kubeVersion.
    ld = [f"-X helm.sh/helm/v3/internal/version.version={ver}",
          f"-X helm.sh/helm/v3/internal/version.gitTreeState=clean",
          f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor={k8s_major}",
          f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={k8s_minor}"]
    run(["go", "build", "-trimpath", "-ldflags", "-s -w " + " ".join(ld), "-o", str(bindir / "helm"),
         "helm.sh/helm/v3/cmd/helm"], src)


# A one-file module standing in for sigs.k8s.io/mcs-api/controllers (see versions.env): the
# proxy refuses its zip, and clustermesh-apiserver needs only this constant of it.
MCS_API_CONTROLLERS_STANDIN = (
    "// Package controllers stands in for sigs.k8s.io/mcs-api/controllers in the lab's build: the\n"
    "// module proxy refuses that zip and clustermesh-apiserver uses only this constant of it.\n"
    "package controllers\n\n"
    "// DerivedServiceAnnotation is the annotation of the MCS API's derived Service (mcs-api v0.5.2).\n"
    "const DerivedServiceAnnotation = \"multicluster.kubernetes.io/derived-service\"\n"
)


def build_clustermesh_apiserver(v: dict[str, str], root: Path, bindir: Path) -> None:
    ver = v["CILIUM_VERSION"]
    src = root / "src" / "cilium"
    standin = src / "mcs-api-controllers"
    standin.mkdir(parents=True, exist_ok=True)
    (standin / "go.mod").write_text("module sigs.k8s.io/mcs-api/controllers\n\ngo 1.24\n")
    (standin / "controllers.go").write_text(MCS_API_CONTROLLERS_STANDIN)
    write_module(src, "lab.invalid/cilium",
                 f"require github.com/cilium/cilium {ver}\n\n"
                 "replace sigs.k8s.io/mcs-api/controllers => ./mcs-api-controllers\n\n"
                 "tool github.com/cilium/cilium/clustermesh-apiserver\n")
    run(["go", "mod", "tidy"], src)
    # Without the version the binary reports an empty one (and so does kvstoremesh-dbg).
    ld = f"-s -w -X github.com/cilium/cilium/pkg/version.ciliumVersion={ver.lstrip('v')}"
    run(["go", "build", "-trimpath", "-ldflags", ld, "-o", str(bindir / "clustermesh-apiserver"),
         "github.com/cilium/cilium/clustermesh-apiserver"], src)


def build_istio(v: dict[str, str], root: Path, bindir: Path) -> None:
    """pilot-discovery, and the lab's xDS probe (a proxy's view of EDS) from the same module."""
    ver = v["ISTIO_VERSION"]
    src = root / "src" / "istio"
    probe = src / "xds-probe"
    probe.mkdir(parents=True, exist_ok=True)
    shutil.copy2(HERE / "xds-probe" / "main.go", probe / "main.go")
    write_module(src, "lab.invalid/istio", f"require istio.io/istio {ver}\n\ntool istio.io/istio/pilot/cmd/pilot-discovery\n")
    run(["go", "mod", "tidy"], src)
    ld = f"-s -w -X istio.io/istio/pkg/version.buildVersion={v['ISTIO_CHART_VERSION']} -X istio.io/istio/pkg/version.buildStatus=Clean"
    run(["go", "build", "-trimpath", "-ldflags", ld, "-o", str(bindir) + "/",
         "istio.io/istio/pilot/cmd/pilot-discovery", "./xds-probe"], src)


def export_cilium(v: dict[str, str], root: Path) -> str:
    """The current chart and the CRDs its operator installs, from the cilium/cilium module."""
    src = root / "src" / "cilium-chart"
    src.mkdir(parents=True, exist_ok=True)
    write_module(src, "lab.invalid/cilium-chart", "")
    info = go_mod_download(f"github.com/cilium/cilium@{v['CILIUM_VERSION']}", src)
    if info.get("Error"):
        return "unavailable: " + info["Error"].splitlines()[0]
    mod = Path(info["Dir"])
    for rel, dest in (("install/kubernetes/cilium", "charts/cilium"),
                      ("pkg/k8s/apis/cilium.io/client/crds/v2", "cilium-crds")):
        out = root / dest
        if out.exists():
            shutil.rmtree(out)
        # The module cache is read-only; copies must be writable so a later export can replace them.
        shutil.copytree(mod / rel, out, copy_function=shutil.copyfile,
                        ignore=shutil.ignore_patterns("*.go"))
    images = root / "images" / "clustermesh-apiserver"
    images.mkdir(parents=True, exist_ok=True)
    # The clustermesh-apiserver image carries this file (images/clustermesh-apiserver/Dockerfile).
    shutil.copyfile(mod / "clustermesh-apiserver" / "etcd-config.yaml", images / "etcd-config.yaml")
    return "ok"


def write_images(v: dict[str, str], root: Path, bindir: Path) -> None:
    """images.json: for each container image the lab can run, the files it puts where the
    image has them, and its entrypoint. tools/lab/lab.py's pod runner reads it."""
    images = {
        "clustermesh-apiserver": {
            "version": v["CILIUM_VERSION"],
            "entrypoint": ["/usr/bin/clustermesh-apiserver"],
            "files": {"/usr/bin/clustermesh-apiserver": str(bindir / "clustermesh-apiserver"),
                      # The image ships etcd at /usr/bin/etcd; etcdinit runs it from there.
                      "/usr/bin/etcd": str(bindir / "etcd"),
                      "/var/lib/cilium/etcd-config.yaml":
                          str(root / "images" / "clustermesh-apiserver" / "etcd-config.yaml")},
        },
        "pilot": {
            "version": v["ISTIO_CHART_VERSION"],
            "entrypoint": ["/usr/local/bin/pilot-discovery"],
            "files": {"/usr/local/bin/pilot-discovery": str(bindir / "pilot-discovery")},
        },
    }
    (root / "images.json").write_text(json.dumps(images, indent=2) + "\n")


def export_charts(v: dict[str, str], root: Path) -> dict[str, str]:
    """Export charts; returns {source: "ok" | reason}. One failing source spares the rest."""
    src = root / "src" / "charts"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    shutil.copy2(HERE / "export-charts" / "main.go", src / "main.go")
    write_module(src, "lab.invalid/charts", "")
    env = go_env()
    # The checksum database does not answer for cilium/charts through the reachable proxy;
    # the hashes pinned in versions.env go into go.sum and are checked against the download.
    env["GONOSUMDB"] = "github.com/cilium/charts"
    (src / "go.sum").write_text(
        f"github.com/cilium/charts {v['CILIUM_CHARTS_VERSION']} {v['CILIUM_CHARTS_SUM']}\n"
        f"github.com/cilium/charts {v['CILIUM_CHARTS_VERSION']}/go.mod {v['CILIUM_CHARTS_GOMOD_SUM']}\n")
    sources = {
        # The older chart only (cilium-<CILIUM_CHART_VERSION>); the current one is export_cilium's.
        "cilium": (f"github.com/cilium/charts@{v['CILIUM_CHARTS_VERSION']}", []),
        "istio": (f"istio.io/istio@{v['ISTIO_VERSION']}", []),
        "kosmos": (f"github.com/kosmos-io/kosmos@{v['KOSMOS_VERSION']}",
                   [f"github.com/kosmos.io/kosmos => github.com/kosmos-io/kosmos {v['KOSMOS_VERSION']}"]),
    }
    status: dict[str, str] = {}
    requires, replaces, tags = [], [], []
    for name, (mod, repl) in sources.items():
        info = go_mod_download(mod, src, env)
        if info.get("Error"):
            status[name] = "unavailable: " + info["Error"].splitlines()[0]
            log(f"charts: {name}: {status[name]}")
            continue
        path = "github.com/kosmos.io/kosmos" if name == "kosmos" else info["Path"]
        requires.append(f"\t{path} {info['Version']}\n")
        replaces.extend(f"\t{r}\n" for r in repl)
        tags.append(name)
    body = ""
    if requires:
        body += "require (\n" + "".join(requires) + ")\n\n"
    if replaces:
        body += "replace (\n" + "".join(replaces) + ")\n"
    write_module(src, "lab.invalid/charts", body)
    if not tags:
        return status
    # `go mod tidy` looks at every build tag, so a source whose module is missing must not
    # even be in the directory: copy only the available sources.
    for t in tags:
        shutil.copy2(HERE / "export-charts" / f"{t}.go", src / f"{t}.go")
    p = run(["go", "mod", "tidy"], src, env=env, check=False)
    if p.returncode == 0:
        p = run(["go", "build", "-trimpath", "-tags", ",".join(tags), "-o", str(src / "export-charts"), "."],
                src, env=env, check=False)
    if p.returncode != 0:
        for t in tags:
            status[t] = "build of the exporter failed"
        return status
    out = root / "charts"
    out.mkdir(exist_ok=True)
    p = run([str(src / "export-charts"), "-out", str(out), "-cilium-version", v["CILIUM_CHART_VERSION"],
             "-istio-version", v["ISTIO_CHART_VERSION"], "-kosmos-version", v["KOSMOS_VERSION"]],
            src, env=env, check=False, capture=True)
    sys.stdout.write(p.stdout)
    sys.stderr.write(p.stderr)
    for t in tags:
        status["cilium-" + v["CILIUM_CHART_VERSION"] if t == "cilium" else t] = (
            "ok" if f"export-charts: {t} ok" in p.stdout else "export failed")
    return status


def sources_digest() -> str:
    h = hashlib.sha256(_pin_lines(binaries=False))
    for f in sorted((HERE / "export-charts").glob("*.go")) + [HERE / "kwok-stages" / "main.go", Path(__file__)]:
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:12]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--print-dir", action="store_true", help="print the build directory and exit")
    ap.add_argument("--charts", action="store_true",
                    help="export the charts again (e.g. to retry a source that was unavailable)")
    args = ap.parse_args()
    root = build_dir()
    if args.print_dir:
        print(root)
        return 0
    if shutil.which("go") is None:
        raise SystemExit("go is not on PATH")
    v = read_versions()
    bindir = root / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    manifest_path = root / "build.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    started = time.monotonic()
    steps = [
        ("etcd", ["etcd"], build_etcd),
        ("kwok", ["kwok", "kwokctl"], build_kwok),
        ("helm", ["helm"], build_helm),
        ("k8s", list(K8S_TOOLS), build_k8s),
    ]
    # The meshes' binaries: keyed by their own pins (a stamp beside them), not by the directory's
    # hash, so a new Cilium or Istio pin rebuilds that binary only.
    pinned_steps = [
        ("etcdctl", ["etcdctl"], build_etcdctl, v["ETCD_VERSION"]),
        ("clustermesh-apiserver", ["clustermesh-apiserver"], build_clustermesh_apiserver,
         v["CILIUM_VERSION"] + " mcs-api-standin=" + hashlib.sha256(MCS_API_CONTROLLERS_STANDIN.encode()).hexdigest()[:8]),
        ("istio", ["pilot-discovery", "xds-probe"], build_istio,
         v["ISTIO_VERSION"] + " probe=" + hashlib.sha256((HERE / "xds-probe" / "main.go").read_bytes()).hexdigest()[:8]),
    ]
    built_any = False
    for name, outputs, fn, *pin in steps + pinned_steps:
        stamp = bindir / f".{name}.pin"
        extra_ok = name != "kwok" or (root / "kwok-stages.yaml").exists()
        if pin:
            extra_ok = stamp.exists() and stamp.read_text() == pin[0]
        if all((bindir / o).exists() for o in outputs) and extra_ok:
            log(f"{name}: cached")
            continue
        t0 = time.monotonic()
        log(f"{name}: building ...")
        fn(v, root, bindir)
        if pin:
            stamp.write_text(pin[0])
        built_any = True
        manifest.setdefault("step_seconds", {})[name] = round(time.monotonic() - t0)
        log(f"{name}: built in {time.monotonic() - t0:.0f}s")
    write_images(v, root, bindir)
    digest = sources_digest()
    if args.charts or manifest.get("charts_sources") != digest:
        t0 = time.monotonic()
        log("charts: exporting ...")
        manifest["charts"] = export_charts(v, root)
        manifest["charts"]["cilium"] = export_cilium(v, root)
        manifest["charts_sources"] = digest
        built_any = True
        log(f"charts: done in {time.monotonic() - t0:.0f}s: {manifest['charts']}")
    else:
        log(f"charts: cached: {manifest.get('charts')}")
    elapsed = time.monotonic() - started
    if built_any and "cold_build_seconds" not in manifest:
        manifest["cold_build_seconds"] = round(elapsed)
    if not built_any:
        manifest["warm_build_seconds"] = round(elapsed, 1)
    manifest["versions"] = v
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"build dir: {root}")
    log(f"this run: {elapsed:.1f}s (first build: {manifest.get('cold_build_seconds')}s, "
        f"last no-op run: {manifest.get('warm_build_seconds')}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
