# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helm releases of one cluster: observe from the release Secrets, compare, run helm only to change.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

Helm 3 keeps each revision of a release in a Secret ``sh.helm.release.v1.<name>.v<revision>``
(labels ``owner=helm``, ``name``, ``version``, ``status``) whose ``release`` value is the release
as gzipped JSON, base64-encoded (once more by the Secret's own encoding). Reading those through
the API tells the chart, its version and the values a release was installed with, in one request
and without the helm binary; helm runs only for a release that must change, so a run that
changes nothing starts no helm process.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import os
import typing as t

PENDING = ("pending-install", "pending-upgrade", "pending-rollback", "uninstalling")


class HelmError(Exception):
    """A release cannot be read or changed; the message names the cluster and the release."""


def decode_release(encoded: t.Union[str, bytes]) -> t.Dict[str, t.Any]:
    """The release stored in a Secret's ``release`` value (as the API returns it: base64 of Helm's base64)."""
    raw = base64.b64decode(base64.b64decode(encoded))
    if raw[:2] == b"\x1f\x8b":  # gzip magic: Helm writes gzip and reads both
        raw = gzip.decompress(raw)
    return json.loads(raw)


def observed_release(secrets: t.Iterable[t.Mapping[str, t.Any]]) -> t.Optional[t.Dict[str, t.Any]]:
    """The latest revision among a release's Secrets: {revision, status, chart, chart_version, values}."""
    latest = None
    for secret in secrets:
        labels = (secret.get("metadata") or {}).get("labels") or {}
        revision = int(labels.get("version") or 0)
        if latest is None or revision > latest[0]:
            latest = (revision, secret)
    if latest is None:
        return None
    revision, secret = latest
    release = decode_release((secret.get("data") or {}).get("release") or "")
    metadata = (release.get("chart") or {}).get("metadata") or {}
    return {"revision": revision, "status": ((release.get("info") or {}).get("status")
                                             or ((secret.get("metadata") or {}).get("labels") or {}).get("status")),
            "chart": metadata.get("name"), "chart_version": metadata.get("version"),
            "values": release.get("config") or {}}


def normalized(values: t.Any) -> t.Any:
    """Values as Helm stores them (JSON): tuples become lists, keys strings."""
    return json.loads(json.dumps(values or {}, sort_keys=True))


def local_chart(chart_ref: str) -> t.Optional[t.Tuple[str, str]]:
    """(name, version) of a chart directory on the controller, or None for a repository or OCI chart."""
    path = os.path.join(os.path.expanduser(chart_ref), "Chart.yaml")
    if not os.path.isfile(path):
        return None
    name = version = None
    with open(path, encoding="utf-8") as handle:
        for line in handle:  # two top-level scalars; no YAML library needed on the target
            key, _sep, value = line.partition(":")
            if key == "name":
                name = value.strip().strip("'\"")
            elif key == "version":
                version = value.strip().strip("'\"")
    if not name or not version:
        raise HelmError("%s has no name or version" % path)
    return name, version


def spec_local_chart(spec: t.Mapping[str, t.Any]) -> t.Optional[t.Tuple[str, str]]:
    """(name, version) when the spec's chart is a directory on the controller: no repository URL and a Chart.yaml."""
    return None if spec.get("chart_repo_url") else local_chart(spec["chart_ref"])


def chart_identity(spec: t.Mapping[str, t.Any]) -> t.Tuple[str, t.Optional[str]]:
    """(chart name, version) the release must run; the version is None when the spec pins none."""
    local = spec_local_chart(spec)
    if local:
        return local
    name = spec["chart_ref"].rstrip("/").rsplit("/", 1)[-1]
    return name, spec.get("chart_version") or None


def with_kept_values(values: t.Mapping[str, t.Any], observed: t.Optional[t.Mapping[str, t.Any]],
                     paths: t.Iterable[str]) -> t.Dict[str, t.Any]:
    """``values`` with the value at each dotted path taken from the running release, where it has one."""
    result = copy.deepcopy(dict(values or {}))
    for path in paths:
        keys = path.split(".")
        source: t.Any = (observed or {}).get("values") or {}
        for key in keys:
            source = source.get(key) if isinstance(source, dict) else None
        if source is None:
            continue
        target = result
        for key in keys[:-1]:
            if not isinstance(target.get(key), dict):
                target[key] = {}
            target = target[key]
        target[keys[-1]] = copy.deepcopy(source)
    return result


def plan(spec: t.Mapping[str, t.Any], observed: t.Optional[t.Mapping[str, t.Any]], cluster: str) -> t.Tuple[str, t.List[str]]:
    """(action, reasons): install, upgrade, unchanged, uninstall or absent."""
    where = "cluster %s: release %s/%s" % (cluster, spec["namespace"], spec["name"])
    if observed and observed["status"] in PENDING:
        raise HelmError("%s is %s (revision %s): another Helm operation runs or was interrupted; wait for it, or "
                        "roll back with `helm rollback %s -n %s`, then run again"
                        % (where, observed["status"], observed["revision"], spec["name"], spec["namespace"]))
    if spec.get("state", "present") == "absent":
        return ("uninstall", ["(uninstall)"]) if observed and observed["status"] != "uninstalled" else ("absent", [])
    if not observed or observed["status"] == "uninstalled":
        return "install", ["(install)"]
    name, version = chart_identity(spec)
    reasons = []
    if observed["status"] != "deployed":
        reasons.append("status %s" % observed["status"])
    if observed["chart"] != name:
        reasons.append("chart %s -> %s" % (observed["chart"], name))
    if version and observed["chart_version"] != version:
        reasons.append("chart version %s -> %s" % (observed["chart_version"], version))
    if normalized(observed["values"]) != normalized(spec.get("values")):
        reasons.append("values")
    return ("upgrade" if reasons else "unchanged"), reasons


def write_private(path: str, data: t.Any) -> str:
    """``data`` as JSON in a file only its owner reads (a kubeconfig, values with keys); returns ``path``."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        json.dump(data, handle)
    return path


def access_arguments(kubeconfig: t.Any, context: t.Optional[str], workdir: str) -> t.List[str]:
    """--kubeconfig / --kube-context for helm; a kubeconfig given as content goes to a 0600 file in ``workdir``."""
    args: t.List[str] = []
    if isinstance(kubeconfig, dict):
        kubeconfig = write_private(os.path.join(workdir, "kubeconfig"), kubeconfig)
    if kubeconfig:
        args += ["--kubeconfig", os.path.expanduser(str(kubeconfig))]
    if context:
        args += ["--kube-context", context]
    return args


def upgrade_command(binary: str, spec: t.Mapping[str, t.Any], values_file: str,
                    access: t.Sequence[str]) -> t.List[str]:
    command = [binary, "upgrade", "--install", spec["name"], spec["chart_ref"], "--namespace", spec["namespace"],
               "--values", values_file, "--reset-values", *access]
    if spec.get("chart_repo_url"):
        command += ["--repo", spec["chart_repo_url"]]
    # A directory's version is its Chart.yaml's; a repository chart named like a local directory still gets one.
    if spec.get("chart_version") and not spec_local_chart(spec):
        command += ["--version", spec["chart_version"]]
    if spec.get("create_namespace"):
        command.append("--create-namespace")
    if spec.get("wait"):
        command.append("--wait")
    if spec.get("timeout"):
        command += ["--timeout", spec["timeout"]]
    return command


def uninstall_command(binary: str, spec: t.Mapping[str, t.Any], access: t.Sequence[str]) -> t.List[str]:
    command = [binary, "uninstall", spec["name"], "--namespace", spec["namespace"], *access]
    if spec.get("wait"):
        command.append("--wait")
    if spec.get("timeout"):
        command += ["--timeout", spec["timeout"]]
    return command
