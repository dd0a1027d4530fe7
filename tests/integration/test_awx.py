"""AWX files: surveys valid for AWX, their variables read by the playbooks they feed, and the
playbooks run with only what an AWX credential of awx/credential_type.yml injects."""

from __future__ import annotations

import pathlib
import re

import pytest
import yaml
from site_helpers import REPO, merged_lab_kubeconfig, run_playbook  # pylint: disable=import-error

TEMPLATES = yaml.safe_load((REPO / "awx" / "job_templates.yml").read_text())["job_templates"]
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def playbook_text(path):
    """The playbook and every playbook it imports, where survey variables must be read."""
    text = (REPO / path).read_text()
    for imported in re.findall(r"import_playbook:\s*(\S+)", text):
        text += playbook_text(pathlib.Path(path).parent / imported)
    return text


def role_texts():
    return "".join(p.read_text() for p in (REPO / "roles").rglob("*.yml"))


@pytest.mark.parametrize("template", TEMPLATES, ids=[t["name"] for t in TEMPLATES])
def test_job_template_is_valid(template):
    assert (REPO / template["playbook"]).is_file(), template["playbook"]
    assert template["job_type"] in ("run", "check")
    if not template.get("survey_enabled"):
        assert "survey_spec" not in template
        return
    spec = template["survey_spec"]
    assert spec["name"] and spec["spec"]
    seen = set()
    sources = playbook_text(template["playbook"]) + role_texts()
    for question in spec["spec"]:
        assert question["type"] in SURVEY_TYPES, question
        assert VARIABLE.match(question["variable"]), question["variable"]
        assert question["variable"] not in seen, "variable asked twice"
        seen.add(question["variable"])
        assert question["question_name"]
        if question["type"] in ("multiplechoice", "multiselect"):
            choices = question["choices"]
            assert isinstance(choices, list) and len(choices) == len(set(choices)) >= 2
            defaults = [d for d in str(question.get("default") or "").split("\n") if d]
            assert set(defaults) <= set(choices), (question["variable"], defaults)
        if question["type"] == "text" and "max" in question:
            assert question.get("min", 0) <= question["max"]
        # A survey answer nobody reads would be a question with no effect.
        assert re.search(r"\b%s\b" % re.escape(question["variable"]), sources), question["variable"]


CONFIRMED = [("Multicloud: rolling kernel upgrade", "kernel_upgrade_confirm"),
             ("Multicloud: rotate a network group's Cilium CA", "cilium_ca_rotate_confirm"),
             ("Multicloud: rotate the Istio mesh's root CA", "istio_ca_rotate_confirm")]


@pytest.mark.parametrize(("name", "variable"), CONFIRMED)
def test_disruptive_job_surveys_ask_for_confirmation(name, variable):
    (template,) = [t for t in TEMPLATES if t["name"] == name]
    variables = {q["variable"]: q for q in template["survey_spec"]["spec"]}
    assert variables[variable]["required"] is True
    assert variables[variable]["default"] == ""


@pytest.mark.lab
def test_playbooks_run_with_the_environment_an_awx_credential_injects(lab, tmp_path):
    """One kubeconfig with a context per cluster in K8S_AUTH_KUBECONFIG; the inventory names contexts."""
    merged = merged_lab_kubeconfig(lab)  # its current context is wrong for all but one cluster
    kubeconfig = tmp_path / "injected.yaml"
    kubeconfig.write_text(yaml.safe_dump(merged))
    kubeconfig.chmod(0o600)
    inventory = yaml.safe_load((REPO / "inventories/lab/hosts.yml").read_text())
    inventory["all"]["children"]["clusters"]["vars"] = {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        "cluster_context": "{{ inventory_hostname }}"}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    # Only the credential's variable: a KUBECONFIG of the caller's would hide a missing injection.
    env = {"K8S_AUTH_KUBECONFIG": kubeconfig, "KUBECONFIG": None}
    for book in ("preflight.yml", "status.yml"):
        run_playbook("playbooks/" + book, "-e", "status_output_dir=%s" % tmp_path,
                     inventories=(tmp_path / "hosts.yml",), env=env, timeout=600)
    status = yaml.safe_load((tmp_path / "status.json").read_text())
    for name in lab.clusters:
        assert status["clusters"][name]["reachable"], status["clusters"][name]["error"]
        assert status["clusters"][name]["version"].startswith("v1.")
