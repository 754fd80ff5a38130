"""A batch size so large that every job's query fails (bigint out of range) is a one-line configuration
error when a command starts, not a worker that starts and then fails every job."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.config import Settings
from tests.cli.inprocess import pointsnet


@pytest.mark.parametrize("variable", ["EXPIRY_BATCH_SIZE", "PROGRAMME_BATCH_SIZE"])
def test_a_batch_size_above_the_bound_is_one_line_and_exit_2(tmp_path, variable):
    done = pointsnet("clearing", "list", env={"POINTSNET_DATA_DIR": str(tmp_path / "data"),
                                              "POINTSNET_DATABASE_URL": None,
                                              f"POINTSNET_{variable}": "9223372036854775807"})
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr == (f"configuration error: POINTSNET_{variable}: Input should be less than or equal to "
                           "1000000\n"), done.stderr


@pytest.mark.parametrize("field", ["expiry_batch_size", "programme_batch_size"])
def test_the_bound_itself_is_accepted(tmp_path, field):
    assert getattr(Settings(data_dir=tmp_path, **{field: 1_000_000}), field) == 1_000_000
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, **{field: 1_000_001})
