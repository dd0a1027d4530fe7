"""The collection builds, installs and runs from its artifact, and the AWX execution environment
definition is valid for ansible-builder."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent


def run(*args, cwd):
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False,
                          env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg")))


def test_collection_builds_and_ee_context_is_created(tmp_path):
    build = run(BIN / "ansible-galaxy", "collection", "build", "--output-path", tmp_path, REPO, cwd=tmp_path)
    assert build.returncode == 0, build.stdout + build.stderr
    tarballs = list(tmp_path.glob("multicloud-interconnect-*.tar.gz"))
    assert len(tarballs) == 1
    listing = subprocess.run(["tar", "-tzf", str(tarballs[0])], capture_output=True, text=True, check=True).stdout
    assert "plugins/modules/validate_topology.py" in listing
    assert ".venv/" not in listing and ".collections/" not in listing  # build_ignore works

    workdir = tmp_path / "ee"
    workdir.mkdir()
    for name in ("execution-environment.yml", "requirements.txt", "requirements.yml"):
        (workdir / name).write_text((REPO / name).read_text())
    (workdir / tarballs[0].name).write_bytes(tarballs[0].read_bytes())
    create = run(BIN / "ansible-builder", "create", "-f", "execution-environment.yml", "-c", "context",
                 "--output-filename", "Containerfile", cwd=workdir)
    assert create.returncode == 0, create.stdout + create.stderr
    containerfile = (workdir / "context" / "Containerfile").read_text()
    assert "ansible-galaxy collection install --offline /build/collections/multicloud-interconnect-" in containerfile
    assert (workdir / "context" / "_build" / "collections" / tarballs[0].name).exists()
    assert "kubernetes" in (workdir / "context" / "_build" / "requirements.txt").read_text()


def test_the_artifact_installs_and_runs_a_playbook_by_its_fqcn(tmp_path):
    build = run(BIN / "ansible-galaxy", "collection", "build", "--output-path", tmp_path, REPO, cwd=tmp_path)
    assert build.returncode == 0, build.stdout + build.stderr
    tarball = next(tmp_path.glob("multicloud-interconnect-*.tar.gz"))
    listing = subprocess.run(["tar", "-tzf", str(tarball)], capture_output=True, text=True, check=True).stdout.split()
    # Development tooling and what the lab generates in the checkout stay out of the artifact.
    for left_out in ("tools/", "molecule/", "inventories/lab/", ".ci/", "__pycache__", "Makefile",
                     "tests/integration/", "tests/lab/", "tests/vm/", ".gitignore"):
        assert not [f for f in listing if left_out in f], left_out
    assert "playbooks/site.yml" in listing and "inventories/example/hosts.yml" in listing

    collections = tmp_path / "collections"
    installed = collections / "ansible_collections" / "multicloud" / "interconnect"
    # As on a user's controller: no checkout ansible.cfg and no .collections link, so only the
    # installed copy is on the path; kubernetes.core and friends come from the ansible package.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1", HOME=str(tmp_path))

    def user(*args):
        return subprocess.run([str(a) for a in args], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300, check=False)

    install = user(BIN / "ansible-galaxy", "collection", "install", "--offline", "--no-deps", "-p", collections, tarball)
    assert install.returncode == 0 and (installed / "MANIFEST.json").exists(), install.stdout + install.stderr
    found = user(BIN / "ansible-galaxy", "collection", "list", "multicloud.interconnect", "--format", "json")
    assert found.returncode == 0, found.stderr
    assert list(json.loads(found.stdout)) == [str(collections / "ansible_collections")]
    ok = user(BIN / "ansible-playbook", "-i", installed / "inventories/example", "multicloud.interconnect.validate")
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    assert "Result: OK (0 errors" in ok.stdout
    # the checkout's broken inventory: the suites' inventories do not ship
    refused = user(BIN / "ansible-playbook", "-i", REPO / "tests/integration/inventories/broken",
                   "multicloud.interconnect.validate")
    assert refused.returncode == 2, refused.stdout[-3000:]
    assert "CIDR_OVERLAP_IN_GROUP" in refused.stdout and "ID_DUPLICATE" in refused.stdout


def test_awx_credential_type_injects_one_kubeconfig_file():
    spec = yaml.safe_load((REPO / "awx" / "credential_type.yml").read_text())
    fields = {f["id"]: f for f in spec["inputs"]["fields"]}
    assert fields["kubeconfig"]["secret"] is True and fields["kubeconfig"]["multiline"] is True
    assert spec["inputs"]["required"] == ["kubeconfig"]
    assert spec["injectors"]["file"] == {"template.kubeconfig": "{{ kubeconfig }}"}
    # The variable kubernetes.core and this collection's modules read when no kubeconfig is given.
    assert spec["injectors"]["env"] == {"K8S_AUTH_KUBECONFIG": "{{ tower.filename.kubeconfig }}"}
