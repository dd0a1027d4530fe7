"""The CA backend: what it keeps, what it re-issues, and check-mode plans that write nothing."""

from __future__ import annotations

import datetime
import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.multicloud.interconnect.plugins.module_utils import _ca
from ansible_collections.multicloud.interconnect.plugins.module_utils._pem import pem_certificates

NOW = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)


def root_spec(tmp_path):
    return _ca.Spec(path=str(tmp_path / "ca"), key_name="root-key.pem", cert_name="root-cert.pem",
                    common_name="Root CA mesh1", organization_name="multicloud.interconnect", curve="secp384r1")


def intermediate_spec(tmp_path, **extra):
    values = dict(path=str(tmp_path / "ca" / "cluster01"), key_name="ca-key.pem", cert_name="ca-cert.pem",
                  common_name="Intermediate CA cluster01", organization_name="multicloud.interconnect",
                  curve="secp384r1", validity="+1825d", path_length=0,
                  signer_cert=str(tmp_path / "ca" / "root-cert.pem"), signer_key=str(tmp_path / "ca" / "root-key.pem"))
    values.update(extra)
    return _ca.Spec(**values)


def make(spec, now=NOW):
    todo = _ca.plan(spec, now=now)
    return todo, _ca.apply(spec, todo, now=now)


def cert_of(spec):
    with open(spec.cert_path, "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read())


def test_a_first_run_makes_private_files_and_a_second_keeps_them(tmp_path):
    root, inter = root_spec(tmp_path), intermediate_spec(tmp_path)
    todo = make(root)[0]
    assert todo.create_dir and todo.create_key and todo.issue_cert
    make(inter)
    for spec in (root, inter):
        assert stat.S_IMODE(os.stat(spec.path).st_mode) == 0o700
        for path in (spec.key_path, spec.cert_path):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
        again = _ca.plan(spec, now=NOW)
        assert not again.changed and again.reasons == [] and again.fingerprint == _ca.fingerprint(cert_of(spec))
    cert = cert_of(inter)
    cert.verify_directly_issued_by(cert_of(root))
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    assert cert_of(root).extensions.get_extension_for_class(x509.BasicConstraints).value.path_length is None


def test_check_mode_plan_writes_nothing_and_waits_for_a_planned_signer(tmp_path):
    inter = intermediate_spec(tmp_path)
    with pytest.raises(_ca.CaError, match="make the signing CA first"):
        _ca.plan(inter, now=NOW)
    todo = _ca.plan(inter, now=NOW, signer_planned=True)
    assert todo.changed and todo.waiting_for_signer and not (tmp_path / "ca").exists()


@pytest.mark.parametrize("change, reason", [
    ({"common_name": "Intermediate CA cluster09"}, "its common name is 'Intermediate CA cluster01'"),
    ({"organization_name": ""}, "its organization is 'multicloud.interconnect'"),
    ({"path_length": -1}, "basic constraints are CA:True, pathlen:0"),
])
def test_a_certificate_that_no_longer_matches_is_reissued_with_the_same_key(tmp_path, change, reason):
    make(root_spec(tmp_path))
    make(intermediate_spec(tmp_path))
    changed = intermediate_spec(tmp_path, **change)
    with open(changed.key_path, "rb") as handle:
        key_before = handle.read()
    todo = _ca.plan(changed, now=NOW)
    assert todo.issue_cert and not todo.create_key and reason in " ".join(todo.reasons), todo.reasons
    _ca.apply(changed, todo, now=NOW)
    with open(changed.key_path, "rb") as handle:
        assert handle.read() == key_before


def test_a_new_root_reissues_the_intermediate_and_expiry_reissues(tmp_path):
    root, inter = root_spec(tmp_path), intermediate_spec(tmp_path)
    make(root)
    make(inter)
    os.unlink(root.key_path)
    os.unlink(root.cert_path)
    make(root)
    todo = _ca.plan(inter, now=NOW)
    assert todo.issue_cert and "is not signed by" in " ".join(todo.reasons)
    make(inter)
    later = NOW + datetime.timedelta(days=1826)
    assert "expired" in " ".join(_ca.plan(inter, now=later).reasons)


def test_a_ca_made_elsewhere_with_the_same_subject_is_kept_and_modes_are_fixed(tmp_path):
    # As community.crypto (or a person) would make it: another serial, no key identifiers.
    spec = _ca.Spec(path=str(tmp_path / "group"), common_name="Cilium CA net-a")
    os.makedirs(spec.path, mode=0o755)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Cilium CA net-a")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(12345).not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    with open(spec.key_path, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    with open(spec.cert_path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(spec.key_path, 0o644)
    todo = _ca.plan(spec, now=NOW)
    assert not todo.issue_cert and todo.fix_dir_mode and todo.fix_modes == [spec.key_path, spec.cert_path], todo
    assert _ca.apply(spec, todo, now=NOW) == _ca.fingerprint(cert)
    assert stat.S_IMODE(os.stat(spec.key_path).st_mode) == 0o600
    assert not _ca.plan(spec, now=NOW).changed


def test_bad_input_names_the_file_and_the_fix(tmp_path):
    spec = _ca.Spec(path=str(tmp_path), common_name="x")
    (tmp_path / "ca.key").write_text("not a key")
    with pytest.raises(_ca.CaError, match=r"ca.key is not an unencrypted PEM private key.*fix"):
        _ca.plan(spec, now=NOW)
    with pytest.raises(_ca.CaError, match="validity"):
        _ca.plan(_ca.Spec(path=str(tmp_path), common_name="x", validity="10 years"), now=NOW)


def test_a_signed_certificate_asked_to_be_self_signed_is_reissued(tmp_path):
    make(root_spec(tmp_path))
    make(intermediate_spec(tmp_path))
    alone = intermediate_spec(tmp_path, signer_cert="", signer_key="")
    todo = _ca.plan(alone, now=NOW)
    assert todo.issue_cert and "it is not self-signed" in " ".join(todo.reasons), todo.reasons
    _ca.apply(alone, todo, now=NOW)
    assert not _ca.plan(alone, now=NOW).changed


@pytest.mark.parametrize("text, span", [("+3650d", datetime.timedelta(days=3650)), ("+52w", datetime.timedelta(weeks=52)),
                                        ("+1w2d12h", datetime.timedelta(days=9, hours=12))])
def test_validity_takes_the_relative_times_the_roles_always_took(text, span):
    assert _ca.Spec(path="/x", common_name="x", validity=text).lifetime() == span


def corporate_chain(days=3650, path_length=None):
    """A CA of a user's PKI as istio_ca_cert gives it: the mesh CA's PEM, then its corporate root's; and its key."""
    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Corporate Root")])
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Corporate Mesh CA")])

    def issue(subject, public, signer_key, days_valid, length):
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(root_name).public_key(public)
                .serial_number(x509.random_serial_number()).not_valid_before(NOW - datetime.timedelta(days=1))
                .not_valid_after(NOW + datetime.timedelta(days=days_valid))
                .add_extension(x509.BasicConstraints(ca=True, path_length=length), critical=True)
                .sign(signer_key, hashes.SHA256()))

    root = issue(root_name, root_key.public_key(), root_key, 7300, None)
    signer = issue(name, key.public_key(), root_key, days, path_length)
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (signer, root)).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return pem, key_pem, signer


def test_a_signer_given_as_text_issues_the_intermediate_within_its_own_validity(tmp_path):
    pem, key, signer = corporate_chain(days=400)
    spec = intermediate_spec(tmp_path, signer_cert="", signer_key="", signer_cert_content=pem, signer_key_content=key)
    todo, found = make(spec)
    assert todo.issue_cert and found == _ca.fingerprint(cert_of(spec))
    cert_of(spec).verify_directly_issued_by(signer)
    # +1825d asked, but a chain is only as valid as its signer.
    assert cert_of(spec).not_valid_after_utc == signer.not_valid_after_utc
    assert not _ca.plan(spec, now=NOW).changed
    # Another CA given: the intermediate is re-issued by it, with the same key.
    other_pem, other_key, other = corporate_chain()
    moved = intermediate_spec(tmp_path, signer_cert="", signer_key="", signer_cert_content=other_pem,
                              signer_key_content=other_key)
    again = _ca.plan(moved, now=NOW)
    assert again.issue_cert and "not signed by the given signer" in again.reasons[0]
    _ca.apply(moved, again, now=NOW)
    cert_of(moved).verify_directly_issued_by(other)
    with pytest.raises(_ca.CaError, match="go together"):
        _ca.plan(intermediate_spec(tmp_path, signer_cert="", signer_key="", signer_cert_content=pem), now=NOW)


def test_a_given_chain_must_allow_a_ca_below_it_and_end_in_a_root():
    pem, key, _signer = corporate_chain()
    certs = [block.encode() for block in pem_certificates(pem)]
    assert _ca.chain_problems(certs, key.encode(), "istio_ca_cert", issues_cas=True, to_root=True, now=NOW) == []
    found = _ca.chain_problems(certs[:1], key.encode(), "istio_ca_cert", issues_cas=True, to_root=True, now=NOW)
    assert found and "not a self-signed root" in found[0]
    pem0, key0, _signer0 = corporate_chain(path_length=0)
    certs0 = [block.encode() for block in pem_certificates(pem0)]
    found = _ca.chain_problems(certs0, key0.encode(), "istio_ca_cert", issues_cas=True, now=NOW)
    assert found and "pathlen:0" in found[0] and "Corporate Mesh CA" in found[0]
    # The Cilium CA signs leaf certificates only: path length 0 is fine there.
    assert _ca.chain_problems(certs0, key0.encode(), "cilium_ca_rotate_cert", now=NOW) == []
    expired = _ca.chain_problems(certs, key.encode(), "istio_ca_cert", now=NOW + datetime.timedelta(days=4000))
    assert expired and "expired" in expired[0]
