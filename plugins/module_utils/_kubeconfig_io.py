# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's kubeconfig files and the credentials that fill them.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

What the entries must hold is decided by the pure ``_kubeconfig``; this file reads and writes
the files (always 0600, replaced atomically) and reads each context's credentials once.
"""

from __future__ import annotations

import os
import tempfile
import time
import typing as t
import urllib.parse

from ansible_collections.multicloud.interconnect.plugins.module_utils import _k8s, _kube_api
from ansible_collections.multicloud.interconnect.plugins.module_utils._kubeconfig import (
    PENDING_TOKEN,
    KubeconfigError,
    absolute_path,
    token_from_secret,
    user_from_config,
)

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core; the module reports it
    yaml = None


def default_kubeconfig_path():
    """Where kubectl would look: K8S_AUTH_KUBECONFIG, then the first file of KUBECONFIG, then ~/.kube/config."""
    value = _k8s.env_fallback_value("K8S_AUTH_KUBECONFIG") or _k8s.env_fallback_value("KUBECONFIG")
    if value:
        return value.split(os.pathsep)[0]
    return "~/.kube/config"


def read_yaml_file(path):
    """The parsed file, None when it does not exist or is empty."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise KubeconfigError("cannot read %s: %s" % (path, err.strerror or err)) from err
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise KubeconfigError("%s is not valid YAML (%s); refusing to overwrite it" % (path, type(err).__name__)) from err


class Credentials:
    """Reads the credentials of each context, once per source (a file, an inline kubeconfig, or a
    service account token Secret read through the cluster's API). In check mode a token that is
    not minted yet is not waited for: it is reported in ``pending``."""

    def __init__(self, params: t.Mapping[str, t.Any], check_mode: bool) -> None:
        self.check_mode = check_mode
        self.default_kubeconfig = params["kubeconfig"]
        self.default_context = params["context"]
        self.wait_timeout = params["wait_timeout"]
        self.pending = []
        self._files = {}

    def _source(self, context):
        kubeconfig = context.get("kubeconfig") or self.default_kubeconfig
        ctx = context.get("context") or self.default_context or _k8s.env_fallback_value("K8S_AUTH_CONTEXT")
        return kubeconfig, ctx

    def _config(self, kubeconfig):
        if isinstance(kubeconfig, dict):
            return kubeconfig, os.getcwd(), "(inline kubeconfig)"
        path = absolute_path(kubeconfig or default_kubeconfig_path())
        if path not in self._files:
            config = read_yaml_file(path)
            if config is None:
                raise KubeconfigError("kubeconfig %s does not exist or is empty; set cluster_kubeconfig" % path)
            self._files[path] = config
        return self._files[path], os.path.dirname(path), path

    def user(self, cluster, context):
        kind = context["credentials"]
        if kind == "token":
            if not context.get("token"):
                raise KubeconfigError("context %s of cluster %s: credentials=token needs token" % (context["name"], cluster))
            return {"token": context["token"]}
        kubeconfig, ctx = self._source(context)
        if kind == "kubeconfig":
            config, base_dir, source = self._config(kubeconfig)
            return user_from_config(config, ctx, base_dir, source)
        if not context.get("secret_name"):
            raise KubeconfigError("context %s of cluster %s: credentials=service_account_token needs secret_name"
                                  % (context["name"], cluster))
        token = self._secret_token(cluster, kubeconfig, ctx, context["secret_namespace"], context["secret_name"])
        if token is None:
            self.pending.append(context["name"])
            return {"token": PENDING_TOKEN}
        return {"token": token}

    def _secret_token(self, cluster, kubeconfig, ctx, namespace, name):
        # _kube_api, not the kubernetes library: this module runs on every site.yml, and importing
        # the library costs more CPU than the reads themselves.
        api = _kube_api.connect(cluster, kubeconfig, ctx)
        path = "/api/v1/namespaces/%s/secrets/%s" % (urllib.parse.quote(namespace, safe=""), urllib.parse.quote(name, safe=""))
        deadline = time.monotonic() + (0 if self.check_mode else max(self.wait_timeout, 0))
        try:
            while True:
                data = None
                try:
                    data = (api.request("reading Secret %s/%s" % (namespace, name), "GET", path) or {}).get("data")
                except _kube_api.ApiError as err:
                    if err.status != 404:  # 404: created by the role in this run, or not yet: wait for it
                        raise _k8s.ClusterError(cluster, "reading Secret %s/%s: %s"
                                                % (namespace, name, _k8s.describe_api_exception(err))) from err
                token = token_from_secret({"data": data}, namespace, name)
                if token or time.monotonic() >= deadline:
                    break
                time.sleep(1)
        finally:
            api.close()
        if token is None and not self.check_mode:
            raise _k8s.ClusterError(cluster, "Secret %s/%s has no token after %s s; check that it exists, has type "
                                    "kubernetes.io/service-account-token and that the controller manager runs"
                                    % (namespace, name, self.wait_timeout))
        return token


def short_error(err):
    text = str(err)
    return text if len(text) < 300 else text[:297] + "..."


def write_file(path, text):
    """Replace ``path`` atomically with ``text``, readable by its owner only."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700)
    handle, tmp = tempfile.mkstemp(prefix=".kubeconfig.", dir=directory)
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
