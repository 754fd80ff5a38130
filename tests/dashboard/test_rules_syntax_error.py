"""A rules document the YAML parser cannot read is refused on the dashboard with the one line
`pointsnet rules set` prints (tests/cli/test_bad_input.py): the problem and where it is, never the
parser's several lines (the source line, a caret under it)."""

from __future__ import annotations

from tests.dashboard.conftest import BASE, post_form
from tests.dashboard.test_chinese_partner_pages import alert
from tests.dashboard.test_chinese_texts import in_chinese

BROKEN = "base_rate: [1\n  foo: :\n"
ONE_LINE = ("the rules document is not valid JSON or YAML: expected ',' or ']', but got ':' at line 2, column 6 "
            "(while parsing a flow sequence at line 1, column 12)")


def test_a_rules_document_with_a_syntax_error_is_refused_in_the_clis_one_line(client_as, partners):
    client = client_as("operator")
    for rules in (f"{BASE}/partners/{partners['CoffeeCo']}/rules", f"{BASE}/partners/network-rules"):
        answer = post_form(client, rules, {"document": BROKEN}, page=rules)
        assert answer.status_code == 422 and 'data-code="validation_failed"' in answer.text, rules
        sentence, beneath = alert(answer.text)
        assert sentence == ONE_LINE, (rules, sentence)
        assert beneath == "validation_failed", (rules, beneath)  # the code kept beneath
        assert "base_rate: [1" in answer.text  # the document is kept for correction


def test_in_chinese_the_english_detail_beneath_is_the_same_line(client_as, partners):
    client = in_chinese(client_as("operator"))
    rules = f"{BASE}/partners/{partners['CoffeeCo']}/rules"
    _sentence, beneath = alert(post_form(client, rules, {"document": BROKEN}, page=rules).text)
    assert beneath == f"validation_failed · {ONE_LINE}", beneath


def test_a_rules_document_nested_too_deeply_is_refused_not_a_500(client_as, partners):
    client = client_as("operator")
    rules = f"{BASE}/partners/{partners['CoffeeCo']}/rules"
    answer = post_form(client, rules, {"document": "campaigns: " + "[" * 3000 + "]" * 3000}, page=rules)
    assert answer.status_code == 422 and 'data-code="validation_failed"' in answer.text
    assert alert(answer.text)[0] == ("the rules document is invalid: it is nested too deeply to be read (a rules "
                                     "document is a few levels deep)")
