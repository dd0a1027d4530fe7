"""A module's main() run inside the caller's process: the arguments it is given, what it prints, how it ends.

The action plugins hand this output to Ansible's own result parser; these tests pin what reaches it:
the module's JSON with check mode and no_log options handled by AnsibleModule, a failure for an
exception or a main() that returns, and the module arguments of the process left as they were.
"""

from __future__ import annotations

import json
import sys
import types

from ansible.module_utils import basic
from ansible.module_utils.common.json import Direction, get_module_encoder

from ansible_collections.multicloud.interconnect.plugins.plugin_utils import _in_process as in_process


def fake_module(main):
    module = types.ModuleType("ansible_collections.multicloud.interconnect.plugins.modules.fake")
    module.main = main
    return module


def params(**args):
    encoder = get_module_encoder(in_process.PROFILE, Direction.CONTROLLER_TO_MODULE)
    return json.dumps({"ANSIBLE_MODULE_ARGS": args}, cls=encoder).encode()


def echo_main():
    module = basic.AnsibleModule(argument_spec=dict(name=dict(type="str", required=True),
                                                    token=dict(type="str", no_log=True)),
                                 supports_check_mode=True)
    module.exit_json(changed=not module.check_mode, name=module.params["name"],
                     said="token is %s" % module.params["token"])


def test_the_module_reads_the_given_arguments_and_its_output_is_returned():
    arguments = params(name="cluster01", token="s3cret-value", _ansible_check_mode=True)
    code, printed = in_process.run_main(fake_module(echo_main), arguments)
    result = json.loads(printed)
    assert code == 0
    assert result["name"] == "cluster01"
    assert result["changed"] is False  # check mode reached AnsibleModule
    # AnsibleModule hides no_log values in its own output, as it does in a module process
    assert "s3cret-value" not in printed
    assert result["said"] == "token is ********"


def test_fail_json_ends_with_code_1_and_the_message():
    def failing_main():
        module = basic.AnsibleModule(argument_spec=dict(name=dict(type="str")))
        module.fail_json(msg="cluster cluster02: not reachable")

    code, printed = in_process.run_main(fake_module(failing_main), params())
    assert code == 1
    assert json.loads(printed)["msg"] == "cluster cluster02: not reachable"
    assert json.loads(printed)["failed"] is True


def test_a_missing_required_option_fails_as_in_a_module_process():
    code, printed = in_process.run_main(fake_module(echo_main), params())
    assert code == 1
    assert "missing required arguments: name" in json.loads(printed)["msg"]


def test_an_exception_is_a_failure_that_names_the_module_and_keeps_the_traceback():
    def broken_main():
        raise KeyError("peers")

    code, printed = in_process.run_main(fake_module(broken_main), params())
    result = json.loads(printed)
    assert code == 1 and result["failed"] is True
    assert result["msg"] == "module fake failed: KeyError: 'peers'"
    assert "broken_main" in result["exception"]


def test_a_main_that_returns_without_a_result_is_a_failure():
    code, printed = in_process.run_main(fake_module(lambda: None), params())
    assert code == 1
    assert json.loads(printed)["msg"] == "module fake returned without exit_json or fail_json"


def test_the_process_arguments_are_restored_and_nothing_is_printed_to_the_real_stdout(capsys):
    before = (basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE)  # pylint: disable=protected-access
    in_process.run_main(fake_module(echo_main), params(name="x"))
    assert (basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE) == before  # pylint: disable=protected-access
    assert capsys.readouterr().out == ""


def test_only_this_collections_modules_run_in_process():
    assert in_process.module_name_of("multicloud.interconnect.cluster_objects") == "cluster_objects"
    assert in_process.module_name_of("kubernetes.core.k8s") is None
    assert in_process.module_name_of("multicloud.interconnectx.y") is None
    assert in_process.module_name_of(None) is None


def test_same_python_compares_the_interpreter_with_this_one(tmp_path):
    link = tmp_path / "python"
    link.symlink_to(sys.executable)
    assert in_process.same_python(None)
    assert in_process.same_python("auto_silent")  # discovery: left to the controller's Python
    assert in_process.same_python(sys.executable)
    assert in_process.same_python(str(link))  # a link to this Python is this Python
    assert not in_process.same_python("/usr/bin/python2.7-elsewhere")


def test_only_tested_ansible_core_releases_run_modules_in_the_worker():
    assert in_process.core_release_tested("2.19.14")
    assert in_process.core_release_tested("2.19.0rc1")
    assert not in_process.core_release_tested("2.20.0")
    assert not in_process.core_release_tested("2.18.9")
    assert in_process.core_release_tested()  # the ansible-core these tests run with
