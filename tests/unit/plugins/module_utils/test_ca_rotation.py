"""The Cilium CA rotation's decisions: stages, resuming, and the invariant that no two clusters ever
stop trusting each other's issuing CA, at any point of any stage."""

from __future__ import annotations

import base64
import datetime
import itertools

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.multicloud.interconnect.plugins.module_utils import _ca, _ca_rotation as r, _cilium
from ansible_collections.multicloud.interconnect.plugins.module_utils._pem import bundle_fingerprints, pem_certificates, pem_fingerprint

MEMBERS = ("cluster01", "cluster02", "cluster03")


def make_ca(name, signer=None, ca=True):
    """``{cert, key}`` as base64 PEM (as tls.ca and the cilium-ca Secret hold them); a chain when signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = (subject, key) if signer is None else (signer["_cert"].subject, signer["_key"])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    chain = pem + (base64.b64decode(signer["cert"]) if signer else b"")
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return {"cert": base64.b64encode(chain).decode(), "key": base64.b64encode(key_pem).decode(), "_cert": cert, "_key": key}


def secret(ca):
    return {"ca.crt": ca["cert"], "ca.key": ca["key"]}


def observed_after(ca_values, record):
    """What a cluster's gathered facts hold once the role applied ``ca_values`` (its __cilium_ca) and wrote ``record``."""
    return {"ca": {"ca.crt": ca_values["cert"], "ca.key": ca_values["key"]},
            "trust": "".join(ca_values["trust"]) or None, "record": record}


def trust_of(member):
    """Issuer and trusted CAs of a cluster, as the read-back sees them (bundle, else cilium-ca's certificates)."""
    issuer = pem_fingerprint(member["ca"]["ca.crt"])
    return {"issuer": issuer, "trust": bundle_fingerprints(member["trust"]) or bundle_fingerprints(member["ca"]["ca.crt"])}


@pytest.fixture(scope="module", name="cas")
def fixture_cas():
    return {"old": make_ca("Cilium CA net-a"), "new": make_ca("Cilium CA net-a 2026-12")}


def start(old):
    return {name: {"name": name, "ca": secret(old), "trust": None, "record": None} for name in MEMBERS}


def test_a_new_rotation_runs_three_stages_and_says_so(cas):
    result = r.plan("net-a", "2026-12", start(cas["old"]))
    assert result["problems"] == []
    assert result["todo"] == ["trust", "issue", "drop"] and result["source"] == "generate"
    assert result["old"] == pem_fingerprint(cas["old"]["cert"]) and result["new"] is None
    assert r.summary(result).startswith("Cilium CA rotation 2026-12 of network group net-a: from CA %s to a CA generated"
                                        % result["old"])


def test_at_every_point_of_every_stage_each_pair_of_clusters_trusts_the_other(cas):
    """Stages are applied cluster by cluster; after each single cluster, the whole group is checked."""
    members = start(cas["old"])
    new_fp = pem_fingerprint(cas["new"]["cert"])
    for stage in r.STAGES:
        target = r.stage_ca(stage, cas["old"], cas["new"], new_fp)
        record = r.record_data("2026-12", cas["new"]["cert"], cas["new"]["key"], cas["old"]["cert"],
                               finished=stage == "drop")
        for order in itertools.permutations(MEMBERS):
            state = dict(members)
            for name in order:
                state[name] = dict(observed_after(target, record if stage != "issue" else state[name]["record"]),
                                   name=name)
                mismatches = r.trust_mismatches({n: trust_of(m) for n, m in state.items()})
                assert not any(mismatches.values()), (stage, order, name, mismatches)
        members = {name: dict(observed_after(target, record if stage != "issue" else members[name]["record"]), name=name)
                   for name in MEMBERS}
        plan = r.plan("net-a", "2026-12", members)
        assert plan["problems"] == []
        assert plan["todo"] == list(r.STAGES[r.STAGES.index(stage) + 1:]), stage
    assert plan["source"] == "record" and set(plan["stages"].values()) == {3}
    # the end state is the plain one: one CA, no bundle, no annotation
    assert r.values(r.stage_ca("drop", cas["old"], cas["new"], new_fp)) == {
        "tls": {"ca": {"cert": cas["new"]["cert"], "key": cas["new"]["key"]}}}


def test_switching_the_ca_at_once_leaves_clusters_that_do_not_trust_each_other(cas):
    """What the stages avoid: the check above fails for a one-step switch."""
    state = start(cas["old"])
    state["cluster01"] = dict(observed_after({"cert": cas["new"]["cert"], "key": cas["new"]["key"], "trust": []}, None),
                              name="cluster01")
    mismatches = r.trust_mismatches({n: trust_of(m) for n, m in state.items()})
    assert mismatches == {"cluster01": ["cluster02", "cluster03"], "cluster02": ["cluster01"], "cluster03": ["cluster01"]}


def test_a_run_stopped_in_the_middle_of_a_stage_is_finished_from_where_each_cluster_is(cas):
    new_fp = pem_fingerprint(cas["new"]["cert"])
    record = r.record_data("2026-12", cas["new"]["cert"], cas["new"]["key"], cas["old"]["cert"], finished=False)
    members = start(cas["old"])
    members["cluster01"] = dict(observed_after(r.stage_ca("issue", cas["old"], cas["new"], new_fp), record), name="cluster01")
    members["cluster02"] = dict(observed_after(r.stage_ca("trust", cas["old"], cas["new"], new_fp), record), name="cluster02")
    members["cluster03"] = dict(observed_after(r.stage_ca("trust", cas["old"], cas["new"], new_fp), None), name="cluster03")
    result = r.plan("net-a", "2026-12", members)
    assert result["problems"] == [] and result["source"] == "record"
    assert result["stages"] == {"cluster01": 2, "cluster02": 1, "cluster03": 1}
    assert result["todo"] == ["issue", "drop"]
    # another name is refused while this one is unfinished, and so is another new CA
    other = r.plan("net-a", "2027-01", members)
    assert [p.code for p in other["problems"]] == ["CILIUM_CA_ROTATION_IN_PROGRESS"]
    assert other["problems"][0].fix == "run ca_rotate.yml with cilium_ca_rotation=2026-12 to finish it first"
    third = make_ca("someone else's")
    assert [p.code for p in r.plan("net-a", "2026-12", members, third["cert"])["problems"]] == [
        "CILIUM_CA_ROTATION_CERT_DIFFERS"]


def test_a_finished_rotation_changes_nothing_and_a_new_name_starts_over(cas):
    new_fp = pem_fingerprint(cas["new"]["cert"])
    done = r.record_data("2026-12", cas["new"]["cert"], cas["new"]["key"], cas["old"]["cert"], finished=True)
    assert done["ca.key"] == ""
    members = {n: dict(observed_after(r.stage_ca("drop", cas["old"], cas["new"], new_fp), done), name=n) for n in MEMBERS}
    again = r.plan("net-a", "2026-12", members)
    assert again["problems"] == [] and again["todo"] == []
    assert "is finished" in r.summary(again)
    assert r.plan("net-a", "2027-06", members)["todo"] == ["trust", "issue", "drop"]
    assert r.plan("net-a", "2027-06", members)["old"] == new_fp
    # the record still holding the key (stopped between the last Helm call and the record): drop again
    unfinished = dict(done, **{"ca.key": cas["new"]["key"]})
    members["cluster02"] = dict(members["cluster02"], record=unfinished)
    with_key = r.plan("net-a", "2026-12", {n: dict(m, record=unfinished) for n, m in members.items()})
    assert with_key["todo"] == ["drop"]
    # a finished rotation whose clusters were put back on the old CA cannot be redone: its key is gone
    back = {n: dict(start(cas["old"])[n], record=done) for n in MEMBERS}
    assert [p.code for p in r.plan("net-a", "2026-12", back)["problems"]] == ["CILIUM_CA_ROTATION_FINISHED"]


def test_a_second_rotation_stopped_while_writing_its_records_is_finished(cas):
    """cluster01 holds the new rotation's record, the others still the finished record of the first."""
    newer = make_ca("Cilium CA net-a 2027-06")
    new_fp = pem_fingerprint(cas["new"]["cert"])
    done = r.record_data("2026-12", cas["new"]["cert"], cas["new"]["key"], cas["old"]["cert"], finished=True)
    members = {n: dict(observed_after(r.stage_ca("drop", cas["old"], cas["new"], new_fp), done), name=n) for n in MEMBERS}
    members["cluster01"]["record"] = r.record_data("2027-06", newer["cert"], newer["key"], cas["new"]["cert"], False)
    result = r.plan("net-a", "2027-06", members)
    assert result["problems"] == [] and result["source"] == "record"
    assert (result["old"], result["new"]) == (new_fp, pem_fingerprint(newer["cert"]))
    assert result["todo"] == ["trust", "issue", "drop"]
    # the first rotation's name now meets an unfinished one
    assert [p.code for p in r.plan("net-a", "2026-12", members)["problems"]] == ["CILIUM_CA_ROTATION_IN_PROGRESS"]
    # two unfinished records that disagree are refused
    members["cluster02"]["record"] = r.record_data("2027-07", cas["old"]["cert"], cas["old"]["key"], cas["new"]["cert"],
                                                   False)
    refused = r.plan("net-a", "2027-06", members)["problems"]
    assert [(p.code, p.clusters) for p in refused] == [("CILIUM_CA_ROTATION_RECORDS_DIFFER", ("cluster01", "cluster02"))]


def test_refusals_name_the_field_and_the_clusters(cas):
    members = start(cas["old"])
    assert r.plan("net-a", "", members)["problems"][0].field == "cilium_ca_rotation"
    bad_name = r.plan("net-a", "../x", members)["problems"][0]
    assert bad_name.code == "CILIUM_CA_ROTATION_NAME" and "'../x'" in bad_name.message
    missing = dict(members, cluster03=dict(members["cluster03"], ca=None))
    problem = r.plan("net-a", "2026-12", missing)["problems"][0]
    assert (problem.code, problem.clusters, problem.field) == ("CILIUM_CA_ROTATION_NOT_INSTALLED", ("cluster03",),
                                                               "cilium_ca_rotate_group")
    other = make_ca("another")
    split = dict(members, cluster02=dict(members["cluster02"], ca=secret(other)))
    assert [p.code for p in r.plan("net-a", "2026-12", split)["problems"]] == ["CILIUM_CA_CONFLICT"]
    same = r.plan("net-a", "2026-12", members, cas["old"]["cert"])["problems"][0]
    assert (same.code, same.field) == ("CILIUM_CA_ROTATION_SAME_CA", "cilium_ca_rotate_cert")
    stray = dict(members, cluster02=dict(members["cluster02"], ca=secret(other),
                                         record=r.record_data("2026-12", cas["new"]["cert"], cas["new"]["key"],
                                                              cas["old"]["cert"], False)))
    stray = {n: dict(m, record=stray["cluster02"]["record"]) for n, m in stray.items()}
    state = r.plan("net-a", "2026-12", stray)["problems"][0]
    assert (state.code, state.clusters) == ("CILIUM_CA_ROTATION_STATE", ("cluster02",))


def test_what_another_playbook_renders_during_a_rotation_is_what_the_rotation_wrote(cas):
    """site.yml between two stages keeps each cluster where it is: same values, same Pod annotation."""
    new_fp = pem_fingerprint(cas["new"]["cert"])
    record = r.record_data("2026-12", cas["new"]["cert"], cas["new"]["key"], cas["old"]["cert"], finished=False)
    for stage in ("trust", "issue"):
        written = r.stage_ca(stage, cas["old"], cas["new"], new_fp)
        seen = observed_after(written, record)
        kept = r.kept_ca(seen["ca"], r.release_trust(r.values(written)), record)
        assert r.values(kept) == r.values(written)
    assert r.values(r.stage_ca("trust", cas["old"], cas["new"], new_fp))["clustermesh"]["apiserver"]["podAnnotations"] == {
        r.ANNOTATION: "trust " + new_fp[:23]}


def test_stages_to_run_stop_where_asked_and_check_mode_shows_the_first():
    assert r.stages_to_run(["trust", "issue", "drop"], "trust", False, False) == ["trust"]
    assert r.stages_to_run(["issue", "drop"], "drop", False, False) == ["issue", "drop"]
    assert r.stages_to_run(["issue", "drop"], "trust", False, False) == []
    assert r.stages_to_run(["trust", "issue", "drop"], "drop", True, False) == ["trust"]
    assert r.stages_to_run(["trust", "issue", "drop"], "drop", True, True) == []


def test_an_intermediate_ca_issues_and_its_whole_chain_is_trusted(cas):
    root = make_ca("Corp Root")
    intermediate = make_ca("Corp Cilium Issuing", signer=root)
    chain = [c.encode() for c in pem_certificates(intermediate["cert"])]
    assert len(chain) == 2
    assert _ca.chain_problems(chain, base64.b64decode(intermediate["key"]), "cilium_ca_rotate_cert") == []
    wrong_order = _ca.chain_problems(chain[::-1], base64.b64decode(root["key"]), "cilium_ca_rotate_cert")
    assert wrong_order == ["certificate 1 of cilium_ca_rotate_cert (Corp Root) is not signed by certificate 2 (Corp Cilium "
                           "Issuing): give the issuing CA first, then each CA above it"]
    assert _ca.chain_problems(chain, base64.b64decode(root["key"]), "f") == [
        "the key does not belong to the first certificate of f (Corp Cilium Issuing)"]
    leaf = make_ca("not a CA", ca=False)
    assert _ca.chain_problems([base64.b64decode(leaf["cert"])], base64.b64decode(leaf["key"]), "f") == [
        "certificate 1 of f (not a CA) is not a CA (basicConstraints CA:TRUE)"]
    target = r.stage_ca("trust", cas["old"], intermediate, pem_fingerprint(intermediate["cert"]))
    expected = bundle_fingerprints(cas["old"]["cert"]) + bundle_fingerprints(intermediate["cert"])
    assert bundle_fingerprints("".join(target["trust"])) == expected


def test_the_read_back_calls_a_group_in_rotation_shared_and_a_split_one_not(cas):
    new_fp = pem_fingerprint(cas["new"]["cert"])
    old_fp = pem_fingerprint(cas["old"]["cert"])
    expected = {n: {"name": n, "id": i + 1, "group": "net-a", "peers": [p for p in MEMBERS if p != n]}
                for i, n in enumerate(MEMBERS)}

    def observed(issuers, trusts):
        return {n: {"config": {"cluster-name": n, "cluster-id": str(i + 1)}, "peers": [p for p in MEMBERS if p != n],
                    "ca_fingerprint": issuers[n], "ca_trust": trusts[n]} for i, n in enumerate(MEMBERS)}

    mid = _cilium.mesh_report(expected, observed({"cluster01": new_fp, "cluster02": old_fp, "cluster03": old_fp},
                                                 {n: [old_fp, new_fp] for n in MEMBERS}))
    assert mid["ok"] and all(e["ca_match"] for e in mid["clusters"].values())
    split = _cilium.mesh_report(expected, observed({"cluster01": new_fp, "cluster02": old_fp, "cluster03": old_fp},
                                                   {"cluster01": [new_fp], "cluster02": [old_fp], "cluster03": [old_fp]}))
    assert not split["ok"]
    assert [n for n, e in sorted(split["clusters"].items()) if not e["ca_match"]] == list(MEMBERS)


def test_a_diff_shows_the_bundle_by_fingerprints_and_never_a_key(cas):
    new_fp, old_fp = pem_fingerprint(cas["new"]["cert"]), pem_fingerprint(cas["old"]["cert"])
    before = r.values({"cert": cas["old"]["cert"], "key": cas["old"]["key"], "trust": []})
    after = r.values(r.stage_ca("trust", cas["old"], cas["new"], new_fp))
    shown_before, shown_after = _cilium.mask_values(before, after)
    assert shown_after["tls"]["caBundle"] == {"enabled": True, "content": "<certificates %s, %s>" % (old_fp, new_fp)}
    assert shown_after["tls"]["ca"] == {"cert": "<certificate %s>" % old_fp, "key": "<hidden>"}
    assert shown_before["tls"]["ca"]["key"] == "<hidden>"
    assert cas["old"]["key"] not in str(shown_after) and cas["new"]["key"] not in str(shown_after)
