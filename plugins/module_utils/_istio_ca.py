# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Istio mesh's CA as site.yml installs it, and the checks before any cluster's ``cacerts`` changes.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

Every cluster's istiod signs with its own intermediate CA, issued by the mesh's signer: a root the
istio role makes and keeps on the controller (``istio_ca_dir``), or a CA of the user's own PKI
(``istio_ca_cert``: that CA first, then each CA above it up to the root; ``istio_ca_key``). Each
cluster's Secret ``cacerts`` holds the intermediate, ``cert-chain.pem`` (the intermediate, then the
signer's chain) and ``root-cert.pem`` (the root that chain ends in: the one every cluster trusts).

Writing another root into the clusters one by one leaves pairs that do not trust each other until
the last one is done, so site.yml installs the mesh's root only where no ``cacerts`` runs another;
moving a running mesh to another root is ``playbooks/ca_rotate.yml``'s work.
"""

from __future__ import annotations

import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils._pem import bundle_fingerprints, pem_certificates, pem_fingerprint
from ansible_collections.multicloud.interconnect.plugins.module_utils._problems import Problem, problem


def chain_anchor(chain: t.Any) -> t.Optional[str]:
    """The last certificate (PEM) of a signer's chain (PEM, or base64 of PEM): the root it ends in."""
    blocks = pem_certificates(chain)
    return blocks[-1] if blocks else None


def anchor_fingerprint(chain: t.Any) -> t.Optional[str]:
    """Fingerprint of the root a chain ends in; None when it holds no certificate."""
    return pem_fingerprint(chain_anchor(chain))


def cacerts_roots(cacerts: t.Optional[t.Mapping[str, t.Any]]) -> t.Tuple[t.Optional[str], t.List[str]]:
    """What one cluster's ``cacerts`` runs: the root its cert-chain.pem ends in, and the roots of root-cert.pem."""
    cacerts = cacerts or {}
    return anchor_fingerprint(cacerts.get("cert-chain.pem")), bundle_fingerprints(cacerts.get("root-cert.pem"))


def given_ca_problems(cert: t.Any, key: t.Any, field: str, clusters: t.Sequence[str]) -> t.List[Problem]:
    """Why a CA the user gives (``field``: istio_ca_cert or istio_ca_rotate_cert; PEM texts) cannot sign the
    clusters' intermediates (empty: it can)."""
    key_field = field.replace("_cert", "_key")
    if not key:
        return [problem("ISTIO_CA_KEY", "%s is set without %s." % (field, key_field),
                        "set %s to the key of %s's first certificate (base64 PEM; keep it in a vault)" % (key_field, field),
                        clusters, None, key_field)]
    # Imported here: the filters that load this module run on controllers where only the checks of a
    # given CA need cryptography.
    from ansible_collections.multicloud.interconnect.plugins.module_utils import _ca  # pylint: disable=import-outside-toplevel

    if not _ca.HAS_CRYPTOGRAPHY:
        return [problem("ISTIO_CA_CERT_INVALID", "checking %s needs the Python library cryptography on the controller." % field,
                        "install cryptography (requirements.txt) where ansible-playbook runs", clusters, None, field)]
    text = key.decode("ascii", "replace") if isinstance(key, bytes) else str(key)
    found = _ca.chain_problems([block.encode("ascii") for block in pem_certificates(cert)], text.encode(), field,
                               issues_cas=True, to_root=True)
    if not found:
        return []
    return [problem("ISTIO_CA_CERT_INVALID", "%s cannot sign the clusters' intermediate CAs: %s." % (field, "; ".join(found)),
                    "give the CA that issues the mesh's intermediates first, then each CA above it up to the self-signed "
                    "root (base64 of the PEM bundle), and its key in %s" % key_field, clusters, None, field)]


def install_problems(members: t.Mapping[str, t.Mapping[str, t.Any]], chain: t.Any, given: bool,
                     ca_dir: str) -> t.List[Problem]:
    """Why site.yml must not write ``cacerts`` from ``chain`` (the signer's chain, PEM; empty while the
    istio role is still to make its root): a cluster whose ``cacerts`` runs another root, or trusts more.

    ``members``: inventory name -> ``{name, cacerts: {root-cert.pem, cert-chain.pem} or None}``;
    ``given``: the chain is istio_ca_cert (else the root in ``ca_dir``)."""
    wanted = anchor_fingerprint(chain)
    running: t.Dict[str, t.Tuple[t.Optional[str], t.List[str]]] = {}
    for name in sorted(members):
        root, trusted = cacerts_roots(members[name].get("cacerts"))
        if (root or trusted) and not (wanted and root == wanted and set(trusted) == {wanted}):
            running[name] = (root, trusted)
    if not running:
        return []
    detail = "; ".join("%s chains to %s and trusts %s" % (name, root or "nothing", ", ".join(trusted) or "nothing")
                       for name, (root, trusted) in running.items())
    others = {root for root, trusted in running.values() if root and set(trusted) == {root}}
    adopt = ("set istio_ca_cert and istio_ca_key to the CA the clusters run (root %s)" % others.pop()
             if len(others) == 1 else "bring the clusters to one root first")
    rotate = "playbooks/ca_rotate.yml (-e istio_ca_rotation=<name>, with istio_ca_rotate_cert and istio_ca_rotate_key%s)" % (
        " set to istio_ca_cert and istio_ca_key" if given else " for a CA of your own, or without them for a root it makes")
    if given:
        what = "istio_ca_cert ends in root %s" % (wanted or "that cannot be read")
        fix = "to move the mesh to it, run %s while istio_ca_cert and istio_ca_key still name the CA the mesh runs; or %s" % (
            rotate, adopt)
        field = "istio_ca_cert"
    elif wanted:
        what = "the mesh's root in %s is %s" % (ca_dir, wanted)
        fix = ("point istio_ca_dir at the directory that holds the root the clusters run, or %s; to move the mesh to "
               "another root, run %s" % (adopt, rotate))
        field = "istio_ca_dir"
    else:
        what = "%s holds no root, so this run would make a new one" % ca_dir
        fix = "restore istio_ca_dir from its backup (or point it at the directory of the mesh's root), or %s" % adopt
        field = "istio_ca_dir"
    return [problem("ISTIO_CA_DIFFERS",
                    "%s, but %s. Writing it into the clusters one by one would leave pairs that do not trust each other "
                    "until the last one is done." % (what, detail), fix, sorted(running), None, field)]
