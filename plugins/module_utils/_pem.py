# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One fingerprint for every certificate the collection shows or compares.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

The CA files on the controller (``ca_files``), the CA a cluster runs (the status report,
``cilium_mesh_info``) and the masked values of a diff all print a CA by this fingerprint, so
one CA reads the same wherever it appears, and a user can check it with
``openssl x509 -noout -fingerprint -sha256``. Stdlib only: the readers of cluster state run
where ``cryptography`` may be missing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import typing as t

_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.S)


def der_fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate as openssl prints it: upper-case hex bytes joined by colons."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def pem_fingerprint(cert: t.Any) -> t.Optional[str]:
    """``der_fingerprint`` of the first certificate of ``cert``: PEM, or base64 of PEM (as in Secrets
    and Helm values); None when it holds no readable certificate."""
    if not cert:
        return None
    text = cert.decode("ascii", "replace") if isinstance(cert, bytes) else str(cert)
    if "-----BEGIN" not in text:
        try:
            text = base64.b64decode(text, validate=False).decode("ascii", "replace")
        except (binascii.Error, ValueError):
            return None
    match = _CERTIFICATE.search(text)
    if not match:
        return None
    try:
        der = base64.b64decode("".join(match.group(1).split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return der_fingerprint(der)


def pem_certificates(bundle: t.Any) -> t.List[str]:
    """Every certificate of ``bundle`` (PEM, or base64 of PEM), each as one normalized PEM block, in order;
    a CA with its chain (an intermediate, then the CAs above it) gives several."""
    if not bundle:
        return []
    text = bundle.decode("ascii", "replace") if isinstance(bundle, bytes) else str(bundle)
    if "-----BEGIN" not in text:
        try:
            text = base64.b64decode(text, validate=False).decode("ascii", "replace")
        except (binascii.Error, ValueError):
            return []
    blocks = []
    for match in _CERTIFICATE.finditer(text):
        body = "".join(match.group(1).split())
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        blocks.append("-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n" % "\n".join(lines))
    return blocks


def bundle_fingerprints(bundle: t.Any) -> t.List[str]:
    """``der_fingerprint`` of every certificate of ``bundle`` (PEM, or base64 of PEM), in order."""
    return [fp for fp in (pem_fingerprint(block) for block in pem_certificates(bundle)) if fp]
