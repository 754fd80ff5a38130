"""``python -m services.cli`` as a real process: the entry point, its exit codes and streams.

The other command tests run the command in the test process (tests/cli/inprocess.py); this one
checks that a real process answers exactly what the in-process runner answers for the same calls.
"""

import json
import os
import subprocess
import sys

from tests.cli.inprocess import pointsnet as in_process


def test_a_real_process_answers_what_the_in_process_runner_answers(tmp_path):
    env = dict(os.environ, POINTSNET_DATA_DIR=str(tmp_path / "data"))
    env.pop("POINTSNET_DATABASE_URL", None)

    def process(*args):
        return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env, capture_output=True,
                              text=True, timeout=120)

    same_env = {"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": None}
    upgraded = in_process("db", "upgrade", env=same_env)
    assert (upgraded.returncode, upgraded.stdout, upgraded.stderr) == (0, "database schema is up to date\n", "")
    answers = {}
    for args in (("partners", "add", "Other", "--billing", "weekly"), ("verify", "--json")):
        real, here = process(*args), in_process(*args, env=same_env)
        assert (real.returncode, real.stdout, real.stderr) == (here.returncode, here.stdout, here.stderr), args
        answers[args[0]] = real
    refused = answers["partners"]
    assert refused.returncode == 2 and refused.stdout == "" and refused.stderr.strip().count("\n") == 0
    assert "billing" in refused.stderr
    assert answers["verify"].returncode == 0 and json.loads(answers["verify"].stdout)["ok"] is True


def test_a_bad_setting_is_one_line_naming_the_variable_and_exit_2(tmp_path):
    env = dict(os.environ, POINTSNET_DATA_DIR=str(tmp_path / "data"), POINTSNET_SETTLEMENT_JOBS="0",
               POINTSNET_SETTLEMENT_GRACE_MINUTES="soon")
    env.pop("POINTSNET_DATABASE_URL", None)
    answer = subprocess.run([sys.executable, "-m", "services.cli", "clearing", "list"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert answer.returncode == 2 and answer.stdout == ""
    assert answer.stderr.count("\n") == 1 and "Traceback" not in answer.stderr
    assert answer.stderr.startswith("configuration error: ")
    assert "POINTSNET_SETTLEMENT_JOBS: Input should be greater than or equal to 1" in answer.stderr
    assert "POINTSNET_SETTLEMENT_GRACE_MINUTES: Input should be a valid integer" in answer.stderr
