"""Every job template of awx/job_templates.yml run the way AWX's task runs a job: through
ansible-runner, in a private data directory holding the survey answers as extra variables, the
credential's injected kubeconfig (0600) and environment, the inventory, and ``--check`` for a
check job. The runner's status, the changed counts from its events, and no secret in its stdout
or events (AWX stores both)."""

from __future__ import annotations

import json
import pathlib
import re
import shutil

import jinja2
import pytest
import yaml
from site_helpers import BIN, REPO, core, merged_lab_kubeconfig  # pylint: disable=import-error

pytestmark = pytest.mark.lab
TEMPLATE_LIST = yaml.safe_load((REPO / "awx/job_templates.yml").read_text())["job_templates"]
TEMPLATES = {t["playbook"]: t for t in TEMPLATE_LIST}
BY_NAME = {t["name"]: t for t in TEMPLATE_LIST}
CREDENTIAL = yaml.safe_load((REPO / "awx/credential_type.yml").read_text())
REPORT_TASK = "Read every cluster, compare it with the inventory, write status.json and topology.svg"
ROTATION_CA_TASK = "Make the new CA on the controller, once per rotation name"


def survey_answers(template, chosen):
    """Extra variables as AWX sends them: each question's default in its type (a multiselect is a
    list of its default lines), replaced by ``chosen`` where given."""
    answers = {}
    for question in (template.get("survey_spec") or {}).get("spec") or []:
        default = question.get("default")
        if question["type"] == "multiselect":
            default = [line for line in str(default or "").split("\n") if line]
        elif question["type"] == "integer":
            default = int(default) if default not in (None, "") else None
        answers[question["variable"]] = default
    unknown = set(chosen) - set(answers)
    assert not unknown, "not survey questions: %s" % unknown
    answers.update(chosen)
    return answers


def inject(credential_type, inputs, private_dir):
    """The credential's injectors rendered as AWX renders them: each file 0600 in the job's
    private directory, the env values with ``tower.filename.<name>`` naming those files."""
    env_dir = private_dir / "env"
    filenames = {}
    for key, template in credential_type["injectors"].get("file", {}).items():
        name = key.split(".", 1)[1]
        path = env_dir / ("credential_%s" % name)
        path.write_text(jinja2.Template(template).render(**inputs))
        path.chmod(0o600)
        filenames[name] = str(path)
    return {key: jinja2.Template(value).render(tower={"filename": filenames}, **inputs)
            for key, value in credential_type["injectors"].get("env", {}).items()}


class Job:
    """One job of a template: private data directory, then ansible_runner.run as AWX's task calls it."""

    def __init__(self, workdir, inventory, kubeconfig_text):
        self.workdir, self.inventory, self.kubeconfig_text = workdir, inventory, kubeconfig_text
        self.count = 0

    def run(self, playbook, job_type=None, template_name=None, **chosen):
        import ansible_runner  # pylint: disable=import-outside-toplevel

        template = BY_NAME[template_name] if template_name else TEMPLATES[playbook]
        assert template["playbook"] == playbook
        job_type = job_type or template["job_type"]
        assert job_type == template["job_type"] or template.get("ask_job_type_on_launch"), playbook
        self.count += 1
        private = self.workdir / ("job%02d" % self.count)
        (private / "env").mkdir(parents=True)
        # The job's copy of the project, as AWX makes one: what a job writes there (the status
        # report under out/) stays with the job. Playbooks copied, the rest linked.
        project = private / "project"
        project.mkdir()
        shutil.copytree(REPO / "playbooks", project / "playbooks")
        for name in ("ansible.cfg", ".collections", "roles", "inventories"):
            (project / name).symlink_to(REPO / name)
        extravars = survey_answers(template, chosen)
        (private / "env" / "extravars").write_text(yaml.safe_dump(extravars))
        envvars = inject(CREDENTIAL, {"kubeconfig": self.kubeconfig_text}, private)
        # the EE's PATH (this virtualenv's ansible), and nothing of the caller's kubeconfig
        envvars.update(PATH="%s:/usr/bin:/bin" % BIN, KUBECONFIG="")
        (private / "env" / "envvars").write_text(yaml.safe_dump(envvars))
        if job_type == "check":
            (private / "env" / "cmdline").write_text("--check")
        runner = ansible_runner.run(private_data_dir=str(private), playbook=playbook, inventory=str(self.inventory),
                                    forks=template.get("forks") or 5, quiet=True)
        events = list(runner.events)
        stats = next((e["event_data"] for e in events if e["event"] == "playbook_on_stats"), {})
        return {"status": runner.status, "rc": runner.rc, "stdout_text": runner.stdout.read(), "events": events, "changed": stats.get("changed", {}),
                "processed": stats.get("processed", {}), "failures": stats.get("failures", {}), "extravars": extravars, "private": private,
                "kubeconfig": pathlib.Path(envvars["K8S_AUTH_KUBECONFIG"])}


@pytest.fixture(scope="module")
def jobs(lab, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("awx-jobs")
    # The project's lab inventory as an AWX inventory: no cluster_kubeconfig, a context per cluster.
    inventory = workdir / "inventory"
    shutil.copytree(REPO / "inventories/lab", inventory)
    clusters_vars = inventory / "group_vars" / "clusters.yml"
    settings = yaml.safe_load(clusters_vars.read_text())
    settings.pop("cluster_kubeconfig")
    settings["cluster_context"] = "{{ inventory_hostname }}"
    clusters_vars.write_text(yaml.safe_dump(settings))
    kubeconfig = yaml.safe_dump(merged_lab_kubeconfig(lab))
    job = Job(workdir, inventory, kubeconfig)
    out = {"secrets": secrets_of(kubeconfig), "runs": {}}
    runs = out["runs"]
    runs["status"] = job.run("playbooks/status.yml")
    runs["site"] = job.run("playbooks/site.yml")
    runs["site check"] = job.run("playbooks/site.yml", job_type="check")
    runs["remove"] = job.run("playbooks/interconnect_remove.yml", interconnect_remove_groups=["net-b"])
    out["after_remove"] = remote_secrets(lab, "cluster01")
    runs["join"] = job.run("playbooks/interconnect_join.yml", interconnect_groups=["net-a", "net-b"])
    out["after_join"] = remote_secrets(lab, "cluster01")
    runs["gateway update"] = job.run("playbooks/gateway_address_update.yml", interconnect_update_groups=["net-a", "net-b"])
    runs["kernel check"] = job.run("playbooks/kernel_upgrade.yml", job_type="check", kernel_upgrade_flavor="ml")
    runs["kernel"] = job.run("playbooks/kernel_upgrade.yml", kernel_upgrade_confirm="drain and reboot")
    runs["ca rotate check"] = job.run("playbooks/ca_rotate.yml", job_type="check",
                                      template_name="Multicloud: rotate a network group's Cilium CA",
                                      cilium_ca_rotate_group="net-a", cilium_ca_rotation="awx-check")
    runs["istio ca rotate check"] = job.run("playbooks/ca_rotate.yml", job_type="check",
                                            template_name="Multicloud: rotate the Istio mesh's root CA",
                                            istio_ca_rotation="awx-check")
    return out


def secrets_of(kubeconfig_text):
    """The credential's secret values: tokens, client keys (and their base64 lines)."""
    found = []
    for user in yaml.safe_load(kubeconfig_text)["users"]:
        for key in ("token", "client-key-data", "password"):
            if user["user"].get(key):
                found.append(user["user"][key])
    assert found, "the lab kubeconfig carries no credential to look for"
    return found


def remote_secrets(lab, cluster):
    items = core(lab, cluster).list_namespaced_secret("istio-system", label_selector="istio/multiCluster=true").items
    return sorted(s.metadata.name for s in items)


def test_every_job_template_is_run(jobs):
    assert set(jobs["runs"]) >= {"status", "site", "remove", "join", "gateway update", "kernel"}
    assert set(TEMPLATES) == {"playbooks/status.yml", "playbooks/site.yml", "playbooks/interconnect_remove.yml",
                              "playbooks/interconnect_join.yml", "playbooks/gateway_address_update.yml",
                              "playbooks/kernel_upgrade.yml", "playbooks/ca_rotate.yml"}


@pytest.mark.parametrize("name", ["status", "site", "site check", "remove", "join", "gateway update", "kernel check",
                                  "kernel", "ca rotate check", "istio ca rotate check"])
def test_the_job_succeeds_as_the_runner_reports_it(jobs, name):
    run = jobs["runs"][name]
    assert (run["status"], run["rc"]) == ("successful", 0), run["stdout_text"][-6000:]
    assert run["failures"] == {}
    assert (run["kubeconfig"].stat().st_mode & 0o777) == 0o600


def test_read_only_and_check_jobs_change_nothing(jobs):
    # Nothing changes on a cluster. On the controller, the status report goes into the job's fresh
    # project copy: the status job writes it, and a check job says it would.
    for name in ("status", "site check", "kernel check", "ca rotate check", "istio ca rotate check"):
        changed_tasks = {(e["event_data"]["host"], e["event_data"]["task"]) for e in jobs["runs"][name]["events"]
                         if e["event"] == "runner_on_ok" and e["event_data"].get("res", {}).get("changed")}
        # the check of a new rotation says it would make the new CA, on the controller (delegated)
        assert changed_tasks <= {("localhost", REPORT_TASK), ("cluster01", ROTATION_CA_TASK)}, (name, changed_tasks)
        if name == "status":  # the events are read: the one change they hold is there
            assert changed_tasks == {("localhost", REPORT_TASK)}
    assert jobs["runs"]["kernel check"]["changed"] == {}
    assert jobs["runs"]["ca rotate check"]["changed"] == {"cluster01": 1}
    # the check job says what a run would do, without the confirmation a run needs
    assert "Stages to run: trust, issue, drop" in " ".join(jobs["runs"]["ca rotate check"]["stdout_text"].split())
    # the Istio check makes no root on the controller: it says the real run makes it
    assert jobs["runs"]["istio ca rotate check"]["changed"] == {}
    istio = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", jobs["runs"]["istio ca rotate check"]["stdout_text"]).split())
    assert "Istio CA rotation awx-check" in istio and "Stages to run: trust, issue, drop" in istio
    assert (jobs["runs"]["status"]["private"] / "project" / "out" / "status.json").is_file()
    assert not (jobs["runs"]["site check"]["private"] / "project" / "out" / "status.json").exists()
    # the check job ran every cluster, and found the mesh as the site job left it
    assert {"cluster01", "cluster02", "cluster03", "cluster04"} <= set(jobs["runs"]["site check"]["processed"])


def test_survey_answers_arrive_as_awx_sends_them(jobs):
    assert jobs["runs"]["remove"]["extravars"] == {"interconnect_remove_groups": ["net-b"],
                                                   "interconnect_restart_control_plane": "false"}
    # net-b's clusters left cluster01's remote secrets, then came back with the join of both groups
    assert not [s for s in jobs["after_remove"] if re.search(r"cluster0[34]$", s)], jobs["after_remove"]
    assert [s for s in jobs["after_join"] if re.search(r"cluster0[34]$", s)], jobs["after_join"]
    assert jobs["runs"]["kernel check"]["extravars"]["kernel_upgrade_flavor"] == "ml"
    assert "nothing to upgrade" in jobs["runs"]["kernel"]["stdout_text"]


def test_no_secret_reaches_the_job_output_or_its_events(jobs):
    for name, run in jobs["runs"].items():
        stored = run["stdout_text"] + json.dumps(run["events"])
        for secret in jobs["secrets"]:
            assert secret not in stored, "a credential value is in the output of job %s" % name
        assert "PRIVATE KEY" not in stored, name
