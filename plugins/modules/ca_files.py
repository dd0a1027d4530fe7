#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ca_files
short_description: Keep one CA (key and certificate) in a directory, self-signed or signed by another CA
version_added: 0.1.0
description:
  - Makes sure the directory O(path) (mode V(0700)) holds an EC key (V(0600)) and a CA certificate (V(0600)) with
    the subject, CA constraints and signer asked for. The cilium role keeps one such CA per network group, the
    istio role the mesh's root and one intermediate per cluster signed by it.
  - The key is made once and never replaced. The certificate is issued when it is missing, and re-issued when it
    does not belong to the key, names another subject, has other CA constraints, is not signed by its signer (a
    new root re-issues its intermediates) or has expired. Otherwise it is kept, whoever made it.
  - One call does what a key, a signing request and a certificate task did, and reads the files once.
  - Keys never appear in the result, the diff or the logs.
author:
  - multicloud.interconnect maintainers (@multicloud)
extends_documentation_fragment:
  - multicloud.interconnect.attributes
options:
  path:
    description: Directory of the key and the certificate.
    type: path
    required: true
  key_name:
    description: File name of the key inside O(path).
    type: str
    default: ca.key
  cert_name:
    description: File name of the certificate inside O(path).
    type: str
    default: ca.crt
  common_name:
    description: Subject common name.
    type: str
    required: true
  organization_name:
    description: Subject organization; empty for none.
    type: str
    default: ""
  curve:
    description: Elliptic curve of a new key.
    type: str
    choices: [secp256r1, secp384r1]
    default: secp256r1
  validity:
    description: Validity of a new certificate, as a relative time in weeks, days, hours, minutes, seconds (V(+3650d), V(+52w)).
    type: str
    default: "+3650d"
  path_length:
    description: Basic constraint C(pathlen); V(-1) for no limit, V(0) for a CA that signs no other CA.
    type: int
    default: -1
  signer_cert:
    description: Certificate of the signing CA; empty for a self-signed CA.
    type: path
    default: ""
  signer_key:
    description: Key of the signing CA; required with O(signer_cert).
    type: path
    default: ""
  signer_cert_content:
    description:
      - The signing CA's certificate as PEM text instead of a file (a CA the user gives, from a vault); the CAs
        above it may follow it. Mutually exclusive with O(signer_cert).
    type: str
    default: ""
  signer_key_content:
    description: The signing CA's key as PEM text; required with O(signer_cert_content). Never shown or logged.
    type: str
    default: ""
  signer_planned:
    description:
      - In check mode, the signer is planned earlier in the same run (a first run), so a missing signer means
        "issued once it exists" rather than an error.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
requirements:
  - cryptography >= 42
seealso:
  - module: community.crypto.x509_certificate
"""

EXAMPLES = r"""
- name: The mesh's root CA
  multicloud.interconnect.ca_files:
    path: ~/.ansible/multicloud-interconnect/istio-ca
    key_name: root-key.pem
    cert_name: root-cert.pem
    common_name: Root CA mesh1
    organization_name: multicloud.interconnect
    curve: secp384r1
  delegate_to: localhost
  run_once: true

- name: The intermediate CA of one cluster, signed by the root
  multicloud.interconnect.ca_files:
    path: ~/.ansible/multicloud-interconnect/istio-ca/cluster01
    key_name: ca-key.pem
    cert_name: ca-cert.pem
    common_name: Intermediate CA cluster01
    organization_name: multicloud.interconnect
    curve: secp384r1
    validity: +1825d
    path_length: 0
    signer_cert: ~/.ansible/multicloud-interconnect/istio-ca/root-cert.pem
    signer_key: ~/.ansible/multicloud-interconnect/istio-ca/root-key.pem
  delegate_to: localhost

- name: The intermediate CA of one cluster, signed by a CA of the user's own PKI (kept in a vault)
  multicloud.interconnect.ca_files:
    path: ~/.ansible/multicloud-interconnect/istio-ca/cluster01
    key_name: ca-key.pem
    cert_name: ca-cert.pem
    common_name: Intermediate CA cluster01
    path_length: 0
    signer_cert_content: "{{ corporate_mesh_ca_chain }}"
    signer_key_content: "{{ corporate_mesh_ca_key }}"
  delegate_to: localhost
"""

RETURN = r"""
fingerprint:
  description: SHA-256 of the certificate (DER); empty in check mode when it is yet to be issued.
  returned: always
  type: str
reasons:
  description: What the run found to change, one line each; empty when nothing changes.
  returned: always
  type: list
  elements: str
cert_path:
  description: Path of the certificate.
  returned: always
  type: str
key_path:
  description: Path of the key (never its content).
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

from ansible_collections.multicloud.interconnect.plugins.module_utils import _ca  # noqa: E402


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "key_name": {"type": "str", "default": "ca.key", "no_log": False},
            "cert_name": {"type": "str", "default": "ca.crt"},
            "common_name": {"type": "str", "required": True},
            "organization_name": {"type": "str", "default": ""},
            "curve": {"type": "str", "default": "secp256r1", "choices": ["secp256r1", "secp384r1"]},
            "validity": {"type": "str", "default": "+3650d"},
            "path_length": {"type": "int", "default": -1},
            "signer_cert": {"type": "path", "default": ""},
            "signer_key": {"type": "path", "default": "", "no_log": False},
            "signer_cert_content": {"type": "str", "default": ""},
            "signer_key_content": {"type": "str", "default": "", "no_log": True},
            "signer_planned": {"type": "bool", "default": False},
        },
        required_together=[("signer_cert", "signer_key"), ("signer_cert_content", "signer_key_content")],
        mutually_exclusive=[("signer_cert", "signer_cert_content")],
        supports_check_mode=True,
    )
    if not _ca.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography >= 42"), exception=str(_ca.CRYPTOGRAPHY_IMPORT_ERROR))
    params = dict(module.params)
    signer_planned = params.pop("signer_planned") and module.check_mode
    spec = _ca.Spec(**params)
    try:
        todo = _ca.plan(spec, signer_planned=signer_planned)
        found = todo.fingerprint
        if todo.changed and not module.check_mode:
            found = _ca.apply(spec, todo)
    except (_ca.CaError, OSError) as err:
        module.fail_json(msg="CA in %s: %s" % (spec.path, err))
    result = {"changed": todo.changed, "fingerprint": found, "reasons": todo.reasons,
              "cert_path": spec.cert_path, "key_path": spec.key_path}
    if module._diff and todo.changed:
        result["diff"] = {"before": "%s\n" % (todo.fingerprint or "(no certificate)"),
                          "after": "%s\n" % "\n".join(todo.reasons), "before_header": spec.cert_path,
                          "after_header": spec.cert_path}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
