"""Reading the settings imports neither `limits` nor `phonenumbers` when their settings keep the defaults
(about 0.1 s of every command line); a value that is set is still checked by them, as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from shared.config import Settings


def _modules_after_settings(**env: str) -> dict:
    code = ("import sys, json; from shared.config import Settings; Settings(); "
            "print(json.dumps({name: name in sys.modules for name in ('limits', 'phonenumbers')}))")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("POINTSNET_")} | env
    out = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True,
                         check=True, timeout=60)
    return json.loads(out.stdout)


def test_default_settings_import_neither_limits_nor_phonenumbers():
    assert _modules_after_settings() == {"limits": False, "phonenumbers": False}


def test_settings_that_are_set_are_still_checked_by_those_libraries():
    assert _modules_after_settings(POINTSNET_RATE_LIMIT="10/second", POINTSNET_DEFAULT_REGION="jp") == {
        "limits": True, "phonenumbers": True}
    with pytest.raises(ValueError, match="rate limit"):
        Settings(rate_limit="six thousand")
    with pytest.raises(ValueError, match="region"):
        Settings(default_region="XX")
    assert Settings(default_region=" cn ").default_region == "CN"


def test_the_defaults_pass_the_full_checks():
    """The defaults skip the libraries because they are known good: the libraries agree."""
    import phonenumbers
    from limits import parse

    defaults = Settings.model_fields
    assert defaults["default_region"].default in phonenumbers.SUPPORTED_REGIONS
    parse(defaults["rate_limit"].default)
