# -*- coding: utf-8 -*-
# Copyright: multicloud.interconnect contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One CA (key and certificate) in a directory: observe, compare, apply.

Private to the multicloud.interconnect collection: other collections must not import it,
its interface may change without notice.

The cilium role keeps one self-signed CA per network group, the istio role a root and one
intermediate per cluster signed by it. ``plan`` reads what the directory holds and says what a
run must do; ``apply`` does it. A certificate is kept while it matches its key, subject, CA
constraints and signer and has not expired, so a CA made by an earlier version (or by hand with
the same subject) is never replaced for nothing. Keys never leave this module.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
import stat
import typing as t

from ansible_collections.multicloud.interconnect.plugins.module_utils._pem import der_fingerprint

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
    CURVES = {"secp256r1": ec.SECP256R1, "secp384r1": ec.SECP384R1}
except ImportError as _import_error:  # pragma: no cover - reported through missing_required_lib
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = _import_error
    CURVES = {}
DIR_MODE = 0o700
FILE_MODE = 0o600
# community.crypto's relative time, which the roles' validity inputs have always taken: +3650d, +52w, +1w2d12h.
_VALIDITY = re.compile(r"^\+(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


class CaError(Exception):
    """A CA that cannot be planned or made; the message names the file and the fix."""


@dataclasses.dataclass(frozen=True)
class Spec:
    """The CA wanted in ``path``."""

    path: str
    common_name: str
    key_name: str = "ca.key"
    cert_name: str = "ca.crt"
    organization_name: str = ""
    curve: str = "secp256r1"
    validity: str = "+3650d"
    path_length: int = -1
    signer_cert: str = ""
    signer_key: str = ""
    # The signer as PEM text instead of files (a CA the user gives, kept in a vault): its certificate
    # first (any CAs above it may follow), and its key.
    signer_cert_content: str = ""
    signer_key_content: str = ""

    @property
    def signer_label(self) -> str:
        return self.signer_cert or "the given signer"

    @property
    def key_path(self) -> str:
        return os.path.join(self.path, self.key_name)

    @property
    def cert_path(self) -> str:
        return os.path.join(self.path, self.cert_name)

    def lifetime(self) -> datetime.timedelta:
        match = _VALIDITY.match(str(self.validity).strip())
        weeks, days, hours, minutes, seconds = (int(v or 0) for v in match.groups()) if match else (0,) * 5
        span = datetime.timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
        if span < datetime.timedelta(hours=1):
            raise CaError("validity %r is not a relative time of an hour or more such as +3650d or +52w"
                          % (self.validity,))
        return span


def _read(path: str) -> t.Optional[bytes]:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _mode(path: str) -> t.Optional[int]:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None


def _load_key(data: bytes, path: str) -> t.Any:
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        raise CaError("%s is not an unencrypted PEM private key (%s); fix: remove it to have a new one made, "
                      "or put the right key there" % (path, err)) from err


def _load_cert(data: bytes, path: str) -> t.Any:
    """The first certificate of ``data`` (PEM; a chain may follow it)."""
    try:
        return x509.load_pem_x509_certificates(data)[0]
    except ValueError as err:
        raise CaError("%s is not a PEM certificate (%s)" % (path, err)) from err


def _public_der(key: t.Any) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint(cert: t.Any) -> str:
    """The collection's one certificate fingerprint (``_pem``), as the status report prints CAs."""
    return der_fingerprint(cert.public_bytes(serialization.Encoding.DER))


def _attribute(name: t.Any, oid: t.Any) -> str:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def _signed_by(cert: t.Any, issuer: t.Any) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, TypeError, ValueError):
        return False
    return True


def certificate_problems(spec: Spec, cert: t.Any, key: t.Any, signer: t.Optional[t.Any],
                         now: datetime.datetime) -> t.List[str]:
    """Why ``cert`` is not the CA ``spec`` asks for (empty: keep it)."""
    problems = []
    if _public_der(cert.public_key()) != _public_der(key.public_key()):
        problems.append("it does not belong to the key")
    if _attribute(cert.subject, NameOID.COMMON_NAME) != spec.common_name:
        problems.append("its common name is %r" % _attribute(cert.subject, NameOID.COMMON_NAME))
    if _attribute(cert.subject, NameOID.ORGANIZATION_NAME) != (spec.organization_name or ""):
        problems.append("its organization is %r" % _attribute(cert.subject, NameOID.ORGANIZATION_NAME))
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        wanted_length = None if spec.path_length < 0 else spec.path_length
        if not constraints.ca or constraints.path_length != wanted_length:
            problems.append("its basic constraints are CA:%s, pathlen:%s" % (constraints.ca, constraints.path_length))
    except x509.ExtensionNotFound:
        problems.append("it is not a CA (no basic constraints)")
    if signer is None:
        if not _signed_by(cert, cert):
            problems.append("it is not self-signed")
    elif not _signed_by(cert, signer):
        problems.append("it is not signed by %s" % spec.signer_label)
    if cert.not_valid_after_utc <= now:
        problems.append("it expired on %s" % cert.not_valid_after_utc.isoformat())
    return problems


@dataclasses.dataclass
class Plan:
    """What a run must do to the directory, and why."""

    create_dir: bool = False
    fix_dir_mode: bool = False
    create_key: bool = False
    issue_cert: bool = False
    fix_modes: t.List[str] = dataclasses.field(default_factory=list)
    reasons: t.List[str] = dataclasses.field(default_factory=list)
    fingerprint: str = ""
    waiting_for_signer: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.create_dir or self.fix_dir_mode or self.create_key or self.issue_cert or self.fix_modes)


def _signer(spec: Spec) -> t.Tuple[t.Optional[t.Any], t.Any]:
    if spec.signer_cert_content or spec.signer_key_content:
        if not (spec.signer_cert_content and spec.signer_key_content):
            raise CaError("signer_cert_content and signer_key_content go together; fix: give both")
        return (_load_cert(spec.signer_cert_content.encode(), spec.signer_label),
                _load_key(spec.signer_key_content.encode(), "the given signer's key"))
    if not spec.signer_cert:
        return None, None
    if not spec.signer_key:
        raise CaError("signer_cert is set without signer_key; fix: give the key of %s too" % spec.signer_cert)
    cert_data, key_data = _read(spec.signer_cert), _read(spec.signer_key)
    if cert_data is None or key_data is None:
        return None, None
    return _load_cert(cert_data, spec.signer_cert), _load_key(key_data, spec.signer_key)


def plan(spec: Spec, now: t.Optional[datetime.datetime] = None,
         signer_planned: bool = False) -> Plan:
    """Observe the directory and compare it with ``spec``.

    ``signer_planned``: the signer is made earlier in the same run (check mode, first run), so its
    absence means "issued once it exists" rather than an error.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    spec.lifetime()
    if spec.curve not in CURVES:
        raise CaError("curve %r is not one of %s" % (spec.curve, ", ".join(sorted(CURVES))))
    result = Plan()
    dir_mode = _mode(spec.path)
    if dir_mode is None:
        result.create_dir = True
        result.reasons.append("%s does not exist" % spec.path)
    elif dir_mode != DIR_MODE:
        result.fix_dir_mode = True
        result.reasons.append("%s has mode %04o" % (spec.path, dir_mode))
    key_data = _read(spec.key_path)
    cert_data = _read(spec.cert_path)
    signer_cert, _signer_key = _signer(spec)
    if spec.signer_cert and signer_cert is None:
        if not signer_planned:
            raise CaError("the signer %s or its key %s does not exist; fix: make the signing CA first"
                          % (spec.signer_cert, spec.signer_key))
        result.waiting_for_signer = True
    if key_data is None:
        result.create_key = True
        result.issue_cert = True
        result.reasons.append("%s does not exist" % spec.key_path)
    else:
        key = _load_key(key_data, spec.key_path)
        if cert_data is None:
            result.issue_cert = True
            result.reasons.append("%s does not exist" % spec.cert_path)
        elif result.waiting_for_signer:
            result.issue_cert = True
            result.reasons.append("its signer is made in this run")
        else:
            cert = _load_cert(cert_data, spec.cert_path)
            problems = certificate_problems(spec, cert, key, signer_cert, now)
            if problems:
                result.issue_cert = True
                result.reasons.append("%s is re-issued: %s" % (spec.cert_path, "; ".join(problems)))
            else:
                result.fingerprint = fingerprint(cert)
    for path in (spec.key_path, spec.cert_path):
        mode = _mode(path)
        if mode is not None and mode != FILE_MODE and not (path == spec.key_path and result.create_key):
            result.fix_modes.append(path)
            result.reasons.append("%s has mode %04o" % (path, mode))
    return result


def _write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` (0600) through a temporary file, so a reader never sees half a file."""
    tmp = "%s.tmp-%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _issue(spec: Spec, key: t.Any, now: datetime.datetime) -> t.Any:
    signer_cert, signer_key = _signer(spec)
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, spec.common_name)]
    if spec.organization_name:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, spec.organization_name))
    subject = x509.Name(attributes)
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(signer_cert.subject if signer_cert is not None else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               # Never beyond the signer's own end: a chain is only as valid as its shortest link.
               .not_valid_after(min(now + spec.lifetime(), signer_cert.not_valid_after_utc) if signer_cert is not None
                                else now + spec.lifetime())
               .add_extension(x509.BasicConstraints(ca=True, path_length=None if spec.path_length < 0
                                                    else spec.path_length), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if signer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_cert.public_key()), critical=False)
    return builder.sign(signer_key if signer_key is not None else key, hashes.SHA256())


def apply(spec: Spec, todo: Plan, now: t.Optional[datetime.datetime] = None) -> str:
    """Carry out ``todo``; returns the fingerprint of the certificate the directory holds."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if todo.create_dir:
        os.makedirs(spec.path, mode=DIR_MODE, exist_ok=True)
    if todo.create_dir or todo.fix_dir_mode:
        os.chmod(spec.path, DIR_MODE)
    if todo.create_key:
        key = ec.generate_private_key(CURVES[spec.curve]())
        _write(spec.key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                                serialization.NoEncryption()))
    else:
        key = _load_key(_read(spec.key_path) or b"", spec.key_path)
    for path in todo.fix_modes:
        os.chmod(path, FILE_MODE)
    if todo.issue_cert:
        cert = _issue(spec, key, now)
        _write(spec.cert_path, cert.public_bytes(serialization.Encoding.PEM))
        return fingerprint(cert)
    return todo.fingerprint


def chain_problems(certs: t.Sequence[bytes], key: bytes, field: str, issues_cas: bool = False,
                   to_root: bool = False, now: t.Optional[datetime.datetime] = None) -> t.List[str]:
    """Why a CA given as PEM certificates (the issuing CA first, then the CAs above it) and its key cannot
    issue a mesh's certificates (empty: it can). ``field`` names the input in the messages.

    ``issues_cas``: the first CA issues CAs (Istio: one intermediate per cluster), so no path length
    of the chain may forbid one more CA below it. ``to_root``: the chain must end in a self-signed root
    (the trust anchor every cluster installs)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if not certs:
        return ["%s holds no certificate" % field]
    try:
        loaded = [x509.load_pem_x509_certificate(cert) for cert in certs]
    except ValueError as err:
        return ["%s holds a certificate that does not parse (%s)" % (field, err)]
    try:
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as err:
        return ["the key is not an unencrypted PEM private key (%s)" % err]
    problems = []
    if _public_der(loaded[0].public_key()) != _public_der(private.public_key()):
        problems.append("the key does not belong to the first certificate of %s (%s)"
                        % (field, _attribute(loaded[0].subject, NameOID.COMMON_NAME)))
    for position, cert in enumerate(loaded):
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
            is_ca = constraints.ca
        except x509.ExtensionNotFound:
            is_ca = False
        name = _attribute(cert.subject, NameOID.COMMON_NAME)
        if not is_ca:
            problems.append("certificate %d of %s (%s) is not a CA (basicConstraints CA:TRUE)" % (position + 1, field, name))
        elif issues_cas and constraints.path_length is not None and constraints.path_length < position + 1:
            problems.append("certificate %d of %s (%s) has pathlen:%d, too small for the intermediate CAs issued below "
                            "certificate 1 (it needs pathlen:%d or none)"
                            % (position + 1, field, name, constraints.path_length, position + 1))
        if cert.not_valid_after_utc <= now:
            problems.append("certificate %d of %s (%s) expired on %s"
                            % (position + 1, field, name, cert.not_valid_after_utc.isoformat()))
        if position + 1 < len(loaded) and not _signed_by(cert, loaded[position + 1]):
            problems.append("certificate %d of %s (%s) is not signed by certificate %d (%s): give the issuing CA "
                            "first, then each CA above it" % (position + 1, field, name, position + 2,
                                                              _attribute(loaded[position + 1].subject, NameOID.COMMON_NAME)))
    if to_root and not problems and not (loaded[-1].subject == loaded[-1].issuer and _signed_by(loaded[-1], loaded[-1])):
        problems.append("the last certificate of %s (%s) is not a self-signed root: add each CA above it up to the root"
                        % (field, _attribute(loaded[-1].subject, NameOID.COMMON_NAME)))
    return problems
