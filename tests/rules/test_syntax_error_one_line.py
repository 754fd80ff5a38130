"""A rules document the parser cannot read is refused with one line naming the problem and where it is
(line and column): the problem+json body (what the partner API's handler answers for any refusal), the
dashboard (tests/dashboard/test_rules_syntax_error.py) and `pointsnet rules set`
(tests/cli/test_bad_input.py) give the same line, with the stable code validation_failed."""

from __future__ import annotations

import pytest

from shared.errors import ValidationFailed
from shared.rules.document import parse

NOT_READ = "the rules document is not valid JSON or YAML: "


@pytest.mark.parametrize("document, problem", [
    ("base_rate: [1\n  foo: :\n",
     "expected ',' or ']', but got ':' at line 2, column 6 (while parsing a flow sequence at line 1, column 12)"),
    ("base_rate: 2\ncampaigns: *missing\n", "found undefined alias 'missing' at line 2, column 12"),
    ("base_rate: 2\nminimum_spend: 1\x00\n",
     "unacceptable character #x0000: special characters are not allowed at line 2, column 17"),
    ('{"base_rate": 2,}', "Expecting property name enclosed in double quotes: line 1 column 17 (char 16)"),
])
def test_a_document_the_parser_cannot_read_is_one_line_naming_line_and_column(document, problem):
    with pytest.raises(ValidationFailed) as refused:
        parse(document)
    body = refused.value.to_problem()
    assert body["code"] == "validation_failed" and body["status"] == 422
    assert body["detail"] == NOT_READ + problem, body["detail"]
    assert "\n" not in body["detail"]


DEEP = "the rules document is invalid: it is nested too deeply to be read (a rules document is a few levels deep)"


@pytest.mark.parametrize("document", ["campaigns: " + "[" * 3000 + "]" * 3000,
                                      '{"campaigns": ' + "[" * 5000 + "]" * 5000 + "}"], ids=["yaml", "json"])
def test_a_document_nested_beyond_the_parsers_depth_is_refused_not_a_recursion_error(document):
    """Brackets nested a few thousand deep (the size limit allows 100,000) made the parser exceed Python's
    recursion limit: a RecursionError, a 500 on the dashboard, a traceback of `pointsnet rules set` (until
    2026-12-07)."""
    with pytest.raises(ValidationFailed) as refused:
        parse(document)
    assert refused.value.to_problem()["detail"] == DEEP
