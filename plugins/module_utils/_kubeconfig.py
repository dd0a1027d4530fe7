# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""API server URLs on NodePorts, and kubeconfig entries that peers can use.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

Pure and stdlib-only (the YAML text is made by the caller): the module reads files and
Secrets, these functions decide what the kubeconfig must hold, what changes, and what a
person may see of it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import ipaddress
import os
import typing as t


# Marks the entries this collection writes, so a later run can remove those of clusters that
# left the inventory without ever touching entries that somebody else wrote.
EXTENSION_NAME = "multicloud.interconnect"
MANAGED_BY = "multicloud.interconnect"
SECTIONS = ("clusters", "contexts", "users")
_BODY = {"clusters": "cluster", "contexts": "context", "users": "user"}
ADDRESS_TYPES = ("InternalIP", "ExternalIP", "Hostname", "InternalDNS", "ExternalDNS")
CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
# User fields that are not secret; every other value under a user is masked in diffs.
_PUBLIC_USER_FIELDS = frozenset(("client-certificate", "client-key", "tokenFile", "username", "as", "as-uid"))
_PUBLIC_EXEC_FIELDS = frozenset(("apiVersion", "command", "installHint", "interactiveMode", "provideClusterInfo"))
MASK = "<hidden>"
MASK_CHANGED = "<hidden, changed>"
PENDING_TOKEN = "<token not minted yet>"


class KubeconfigError(Exception):
    """Bad input or a kubeconfig that cannot be used; the message names what and how to fix it."""


# --------------------------------------------------------------------------- URLs and facts

def format_url(address: str, port: int) -> str:
    """``https://<address>:<port>``, with IPv6 addresses in brackets."""
    host = str(address).strip()
    try:
        if ipaddress.ip_address(host).version == 6:
            host = "[%s]" % host
    except ValueError:
        pass  # a host name
    return "https://%s:%d" % (host, int(port))


def service_node_port(service: t.Any, port: int = 6443) -> t.Optional[int]:
    """The nodePort of the Service port ``port`` (or of its only port); None until allocated."""
    ports = ((service or {}).get("spec") or {}).get("ports") or []
    chosen = [p for p in ports if p.get("port") == port] or (ports if len(ports) == 1 else [])
    if not chosen or not chosen[0].get("nodePort"):
        return None
    return int(chosen[0]["nodePort"])


def _ready(node: t.Mapping[str, t.Any]) -> bool:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def _control_plane(node: t.Mapping[str, t.Any]) -> bool:
    labels = (node.get("metadata") or {}).get("labels") or {}
    return any(label in labels for label in CONTROL_PLANE_LABELS)


def node_urls(nodes: t.Iterable[t.Mapping[str, t.Any]], node_port: t.Optional[int], address_type: str = "InternalIP",
              cluster: str = "") -> t.List[str]:
    """One URL per node that has an address of ``address_type``, in a stable order.

    Ready nodes come first, then worker nodes before control-plane nodes (managed clusters have
    no control-plane nodes, so the usual default is a worker), then by node name. Each URL
    appears once even when two nodes share an address.
    """
    where = " of cluster %s" % cluster if cluster else ""
    if address_type not in ADDRESS_TYPES:
        raise KubeconfigError("apiserver_nodeport_address_type %r%s is not one of %s"
                              % (address_type, where, ", ".join(ADDRESS_TYPES)))
    if not node_port:
        raise KubeconfigError("the API server Service%s has no nodePort; check that it is of type NodePort" % where)
    nodes = list(nodes or [])
    ordered = sorted(nodes, key=lambda n: (not _ready(n), _control_plane(n), (n.get("metadata") or {}).get("name", "")))
    urls: t.List[str] = []
    seen_types: t.Set[str] = set()
    for node in ordered:
        addresses = (node.get("status") or {}).get("addresses") or []
        seen_types.update(a.get("type", "") for a in addresses)
        match = next((a.get("address") for a in addresses if a.get("type") == address_type and a.get("address")), None)
        if match:
            url = format_url(match, node_port)
            if url not in urls:
                urls.append(url)
    if not urls:
        raise KubeconfigError(
            "no node%s has an address of type %s (%d nodes; address types seen: %s); set "
            "apiserver_nodeport_address_type to one of those, or check apiserver_nodeport_node_label_selectors"
            % (where, address_type, len(nodes), ", ".join(sorted(seen_types)) or "none"))
    return urls


def ca_data_from_configmap(configmaps: t.Iterable[t.Mapping[str, t.Any]], cluster: str = "") -> str:
    """Base64 of ``ca.crt`` in the ``kube-root-ca.crt`` ConfigMap (the CA that signs the API server)."""
    for configmap in configmaps or []:
        pem = (configmap.get("data") or {}).get("ca.crt")
        if pem:
            return base64.b64encode(pem.encode("utf-8")).decode("ascii")
    raise KubeconfigError(
        "cluster %s has no ConfigMap kube-system/kube-root-ca.crt with a ca.crt key (the controller manager "
        "publishes it); set apiserver_nodeport_ca_data to the base64 PEM of the cluster CA" % (cluster or "?"))


def reader_reference(enabled: bool, namespace: str, name: str, secret_name: str, cluster_role: str) -> t.Optional[dict]:
    """The fact ``apiserver_reader_service_account``: where peers find the reader, never its token."""
    if not enabled:
        return None
    return {"namespace": namespace, "name": name, "token_secret": secret_name, "cluster_role": cluster_role}


def cluster_entry_spec(name: str, server: str, tls_server_name: t.Optional[str], ca_data: str, user: str,
                       kubeconfig: t.Any = None, context: t.Optional[str] = None,
                       reader: t.Optional[t.Mapping[str, str]] = None, reader_suffix: str = "-reader") -> dict:
    """One item of the kubeconfig module's ``clusters`` option, for one inventory host.

    The context named after the cluster uses the admin credentials of the inventory
    (``user='admin'``) or the reader token (``user='reader'``); with a reader, a second context
    ``<name><reader_suffix>`` always uses the reader token.
    """
    if user not in ("admin", "reader"):
        raise KubeconfigError("apiserver_nodeport_kubeconfig_user of cluster %s is %r; use admin or reader" % (name, user))
    if user == "reader" and not reader:
        raise KubeconfigError("cluster %s: apiserver_nodeport_kubeconfig_user is reader but the reader service account "
                              "is disabled; set apiserver_nodeport_reader_enabled: true or use admin" % name)
    source = {"kubeconfig": kubeconfig, "context": context}
    admin = dict(name=name, credentials="kubeconfig", **source)
    contexts = []
    if reader:
        token = dict(credentials="service_account_token", secret_namespace=reader["namespace"],
                     secret_name=reader["token_secret"], **source)
        contexts.append(dict(token, name=name) if user == "reader" else admin)
        contexts.append(dict(token, name=name + reader_suffix))
    else:
        contexts.append(admin)
    return {"name": name, "server": server, "tls_server_name": tls_server_name or None,
            "certificate_authority_data": ca_data, "contexts": contexts}


def collect_entries(hostvars: t.Mapping[str, t.Any], hosts: t.Iterable[str], fact: str) -> t.List[dict]:
    """The per-host entries (fact ``fact``) of the hosts that completed the role."""
    entries = []
    for host in hosts or []:
        entry = hostvars[host].get(fact) if hasattr(hostvars[host], "get") else None
        if entry:
            entries.append(entry)
    return entries


def keep_names(inventory_names: t.Iterable[str], written: t.Iterable[str]) -> t.List[str]:
    """Cluster names of the inventory that this run does not write (``--limit``, failed hosts), so they stay."""
    skip = set(written)
    names: t.List[str] = []
    for name in inventory_names or []:
        if name not in skip and name not in names:
            names.append(name)
    return names


# --------------------------------------------------------------------------- kubeconfig documents

def empty_config() -> dict:
    return {"apiVersion": "v1", "kind": "Config", "preferences": {}, "clusters": [], "contexts": [], "users": [],
            "current-context": ""}


def check_config(config: t.Any, path: str = "") -> dict:
    """The parsed kubeconfig, or KubeconfigError naming what is wrong with it."""
    where = " %s" % path if path else ""
    if config is None:
        return empty_config()
    if not isinstance(config, dict):
        raise KubeconfigError("kubeconfig%s is not a mapping; refusing to overwrite it" % where)
    if config.get("kind", "Config") != "Config":
        raise KubeconfigError("kubeconfig%s has kind %r, not Config; refusing to overwrite it" % (where, config.get("kind")))
    for section in SECTIONS:
        value = config.get(section)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(e, dict) and e.get("name") for e in value):
            raise KubeconfigError("kubeconfig%s: %s must be a list of named entries; refusing to overwrite it" % (where, section))
    return config


def _marker(cluster: str) -> t.List[dict]:
    return [{"name": EXTENSION_NAME, "extension": {"managed-by": MANAGED_BY, "cluster": cluster}}]


def managed_cluster(entry_body: t.Any) -> t.Optional[str]:
    """The cluster an entry body was written for, or None when this collection did not write it."""
    if not isinstance(entry_body, dict):
        return None
    for extension in entry_body.get("extensions") or []:
        if isinstance(extension, dict) and extension.get("name") == EXTENSION_NAME:
            value = extension.get("extension") or {}
            if isinstance(value, dict) and value.get("managed-by") == MANAGED_BY:
                return str(value.get("cluster") or "")
    return None


def desired_entries(cluster: t.Mapping[str, t.Any], users: t.Mapping[str, dict]) -> t.Dict[str, t.List[dict]]:
    """Cluster, context and user entries for one cluster; ``users`` maps context name to user body."""
    name = cluster["name"]
    body = {"server": cluster["server"]}
    if cluster.get("certificate_authority_data"):
        body["certificate-authority-data"] = cluster["certificate_authority_data"]
    if cluster.get("tls_server_name"):
        body["tls-server-name"] = cluster["tls_server_name"]
    body["extensions"] = _marker(name)
    out: t.Dict[str, t.List[dict]] = {"clusters": [{"name": name, "cluster": body}], "contexts": [], "users": []}
    for context in cluster.get("contexts") or []:
        ctx_body = {"cluster": name, "user": context["name"]}
        if context.get("namespace"):
            ctx_body["namespace"] = context["namespace"]
        ctx_body["extensions"] = _marker(name)
        out["contexts"].append({"name": context["name"], "context": ctx_body})
        user_body = dict(users[context["name"]])
        user_body["extensions"] = _marker(name)
        out["users"].append({"name": context["name"], "user": user_body})
    return out


def check_clusters(clusters: t.Iterable[t.Mapping[str, t.Any]]) -> None:
    """Every entry name is used once across clusters, contexts and users."""
    problems = []
    seen_clusters: t.Dict[str, int] = {}
    seen_contexts: t.Dict[str, str] = {}
    for cluster in clusters:
        name = cluster.get("name")
        if not name:
            problems.append("a cluster has no name")
            continue
        seen_clusters[name] = seen_clusters.get(name, 0) + 1
        if not str(cluster.get("server", "")).startswith("https://"):
            problems.append("cluster %s: server %r is not an https:// URL" % (name, cluster.get("server")))
        if not cluster.get("contexts"):
            problems.append("cluster %s has no context" % name)
        for context in cluster.get("contexts") or []:
            if context["name"] in seen_contexts:
                problems.append("context %s is asked for by clusters %s and %s" % (context["name"], seen_contexts[context["name"]], name))
            seen_contexts[context["name"]] = name
    problems.extend("cluster %s is listed %d times" % (n, c) for n, c in seen_clusters.items() if c > 1)
    if problems:
        raise KubeconfigError("; ".join(problems) + ". Give every cluster and context its own name.")


def merge(existing: t.Mapping[str, t.Any], clusters: t.Iterable[t.Mapping[str, t.Any]], users: t.Mapping[str, dict],
          keep: t.Iterable[str] = (), prune: bool = True, current_context: t.Optional[str] = None) -> t.Tuple[dict, dict]:
    """The new kubeconfig and a summary of what changes.

    Entries are matched by name within their section: the ones for ``clusters`` are written (in
    place when they exist, appended otherwise), unrelated entries stay as they are, and with
    ``prune`` the entries this collection wrote for clusters that are neither written now nor
    in ``keep`` are removed.
    """
    clusters = list(clusters)
    check_clusters(clusters)
    config = copy.deepcopy(dict(existing))
    for section in SECTIONS:
        config[section] = list(config.get(section) or [])
    wanted = {section: [] for section in SECTIONS}
    for cluster in clusters:
        for section, entries in desired_entries(cluster, users).items():
            wanted[section].extend(entries)
    summary: t.Dict[str, t.List[str]] = {"added": [], "updated": [], "removed": [], "unchanged": []}
    written = {c["name"] for c in clusters}
    kept = set(keep or ())
    for section in SECTIONS:
        wanted_names = {e["name"] for e in wanted[section]}
        result = []
        for entry in config[section]:
            owner = managed_cluster(entry.get(_BODY[section]))
            if entry["name"] in wanted_names:
                result.append(entry)  # replaced below, in place
            elif prune and owner is not None and owner not in written and owner not in kept:
                summary["removed"].append("%s/%s" % (section, entry["name"]))
            else:
                result.append(entry)
        by_name = {e["name"]: e for e in wanted[section]}
        for index, entry in enumerate(result):
            new = by_name.pop(entry["name"], None)
            if new is None:
                continue
            label = "%s/%s" % (section, entry["name"])
            summary["unchanged" if entry == new else "updated"].append(label)
            result[index] = new
        for entry in wanted[section]:
            if entry["name"] in by_name:
                summary["added"].append("%s/%s" % (section, entry["name"]))
                result.append(entry)
        config[section] = result
    context_names = {e["name"] for e in config["contexts"]}
    if current_context:
        if current_context not in context_names:
            raise KubeconfigError("current_context %r is not one of the contexts in the file: %s"
                                  % (current_context, ", ".join(sorted(context_names)) or "none"))
        config["current-context"] = current_context
    elif config.get("current-context") and config["current-context"] not in context_names:
        config["current-context"] = ""  # it pointed at an entry that was just removed
    config.setdefault("apiVersion", "v1")
    config.setdefault("kind", "Config")
    return config, summary


# --------------------------------------------------------------------------- credentials

def absolute_path(path: t.Any) -> str:
    """A source kubeconfig path as kubectl reads it: ``~`` expanded, relative to the working directory."""
    return os.path.abspath(os.path.expanduser(str(path)))


def _resolve(path: t.Any, base_dir: str) -> t.Any:
    if isinstance(path, str) and path and not os.path.isabs(path):
        return os.path.normpath(os.path.join(base_dir, os.path.expanduser(path)))
    return path


def user_from_config(config: t.Mapping[str, t.Any], context: t.Optional[str], base_dir: str, source: str) -> dict:
    """The user body of ``context`` (or of the current context), with relative file paths made absolute."""
    config = check_config(config, source)
    name = context or config.get("current-context")
    if not name:
        raise KubeconfigError("kubeconfig %s has no current-context; set cluster_context for this cluster" % source)
    ctx = next((e for e in config.get("contexts") or [] if e["name"] == name), None)
    if ctx is None:
        raise KubeconfigError("kubeconfig %s has no context %r (it has: %s)"
                              % (source, name, ", ".join(e["name"] for e in config.get("contexts") or []) or "none"))
    user_name = (ctx.get("context") or {}).get("user")
    user = next((e for e in config.get("users") or [] if e["name"] == user_name), None)
    if user is None:
        raise KubeconfigError("kubeconfig %s: context %r names user %r, which is not in the file" % (source, name, user_name))
    body = copy.deepcopy(user.get("user") or {})
    body.pop("extensions", None)
    if not body:
        raise KubeconfigError("kubeconfig %s: user %r has no credentials" % (source, user_name))
    for key in ("client-certificate", "client-key", "tokenFile"):
        if key in body:
            body[key] = _resolve(body[key], base_dir)
    return body


def token_from_secret(secret: t.Any, namespace: str, name: str) -> t.Optional[str]:
    """The token of a service-account-token Secret (base64 in ``data``), or None until it is minted."""
    if secret is None:
        return None
    data = secret.get("data") or {}
    value = data.get("token")
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as err:
        raise KubeconfigError("Secret %s/%s has a token that is not base64 text: %s" % (namespace, name, type(err).__name__)) from err


# --------------------------------------------------------------------------- what people see

def _mask_user(body: t.Any, other: t.Any) -> t.Any:
    if not isinstance(body, dict):
        return MASK if body is not None else None
    other = other if isinstance(other, dict) else {}
    out = {}
    for key, value in body.items():
        if key in _PUBLIC_USER_FIELDS or key == "extensions":
            out[key] = value
        elif key == "exec" and isinstance(value, dict):
            other_exec = other.get("exec") if isinstance(other.get("exec"), dict) else {}
            out[key] = {k: (v if k in _PUBLIC_EXEC_FIELDS else (MASK if other_exec.get(k) == v else MASK_CHANGED))
                        for k, v in value.items()}
        else:
            out[key] = MASK if other.get(key) == value else MASK_CHANGED
    return out


def masked(config: t.Mapping[str, t.Any], other: t.Optional[t.Mapping[str, t.Any]] = None) -> dict:
    """A copy safe to print: every credential of every user is replaced by a mask.

    With ``other`` (the state on the other side of a diff), a credential that differs is shown
    as ``<hidden, changed>``, so a diff still says which user changes without showing any value.
    """
    other_users = {e.get("name"): e.get("user") for e in (other or {}).get("users") or [] if isinstance(e, dict)}
    out = copy.deepcopy(dict(config))
    users = []
    for entry in out.get("users") or []:
        if not isinstance(entry, dict):
            continue
        body = entry.get("user")
        compare = other_users.get(entry.get("name"), body) if other is not None else body
        users.append({"name": entry.get("name"), "user": _mask_user(body, compare)})
    if "users" in out:
        out["users"] = users
    for entry in out.get("clusters") or []:
        body = entry.get("cluster") if isinstance(entry, dict) else None
        if isinstance(body, dict) and isinstance(body.get("certificate-authority-data"), str):
            body["certificate-authority-data"] = fingerprint(body["certificate-authority-data"])
    return out


def fingerprint(data: str) -> str:
    """A short stand-in for long public data (a CA bundle) in diffs: a change still shows."""
    digest = hashlib.sha256(data.encode("utf-8")).hexdigest()
    return "<%d characters, sha256 %s>" % (len(data), digest[:16])


def diff(before: t.Mapping[str, t.Any], after: t.Mapping[str, t.Any]) -> t.Tuple[dict, dict]:
    """Masked before/after pair for Ansible's diff; a changed credential shows as changed on the after side."""
    return masked(before), masked(after, before)
