"""The partner pages, a member's lots and the Approvals outcome in 简体中文 (docs/dashboard.md, "Language"):
a refusal reads as a translated sentence with its code and English detail beneath, smaller; the network
that funds a lot is named by its label; a decided request's outcome is a readable summary, its raw JSON
kept beside it, smaller."""

from __future__ import annotations

import re
from html import unescape

from shared.ledger.cycles import cycle_date_for
from tests.dashboard.conftest import BASE, post_form
from tests.dashboard.test_chinese_texts import cells, in_chinese
from tests.dashboard.test_partners import ONBOARD, RULES


def alert(html: str) -> tuple[str, str]:
    """A page's refusal: (its first sentence, its smaller code-and-detail line), as a reader sees them."""
    found = re.search(r'<p class="error" role="alert"[^>]*>(.*?)</p>', html, re.S)
    assert found, "the page shows no refusal"
    text = found.group(1)
    sentence = re.search(r'<span class="problem-text">(.*?)</span>', text, re.S)
    beneath = re.search(r'<small class="problem-code"[^>]*>(.*?)</small>', text, re.S)
    assert sentence and beneath, text
    return unescape(sentence.group(1).strip()), unescape(re.sub(r"<[^>]+>", "", beneath.group(1)))


def chinese(text: str) -> bool:
    return bool(re.search(r"[\u4e00-\u9fff]", text))


def test_a_refused_onboarding_in_chinese_reads_as_a_chinese_sentence(client_as, partners):
    client = in_chinese(client_as("operator"))
    answer = post_form(client, f"{BASE}/partners", ONBOARD | {"name": "CoffeeCo"}, page=f"{BASE}/partners/new")
    assert answer.status_code == 422 and 'data-code="validation_failed"' in answer.text
    sentence, beneath = alert(answer.text)
    assert sentence == "输入无效。"
    assert beneath.startswith("validation_failed · ") and "CoffeeCo" in beneath  # the English detail, smaller


def test_a_refused_contract_change_in_chinese_translates_the_date_it_refuses(client_as, partners):
    client = in_chinese(client_as("operator"))
    contracts = f"{BASE}/partners/{partners['CoffeeCo']}/contracts"
    answer = post_form(client, contracts, {"billing": "postpaid", "effective_from": "tomorrow"}, page=contracts)
    assert answer.status_code == 422
    sentence, beneath = alert(answer.text)
    assert sentence == "effective_from 应为 YYYY-MM-DD 格式的日期（如 2026-12-01），而不是 'tomorrow'。"
    assert beneath.startswith("validation_failed · effective_from is a date")


def test_a_refused_key_in_chinese_reads_as_a_chinese_sentence(client_as, partners):
    client = in_chinese(client_as("operator"))
    keys = f"{BASE}/partners/{partners['CoffeeCo']}/keys"
    answer = post_form(client, keys, {"public_key": "not a key"}, page=keys)
    assert answer.status_code == 422
    sentence, beneath = alert(answer.text)
    assert chinese(sentence) and "key" not in sentence
    assert beneath.startswith("validation_failed · ")
    assert answer.text.count('role="alert"') == 1  # beside the form only, not also under the tabs


def test_a_refused_webhook_url_in_chinese_under_the_tabs_reads_as_a_chinese_sentence(client_as, partners):
    client = in_chinese(client_as("operator"))
    hooks = f"{BASE}/partners/{partners['CoffeeCo']}/webhooks"
    answer = post_form(client, hooks, {"url": "ftp://example.org"}, page=hooks)
    assert answer.status_code >= 400
    sentence, beneath = alert(answer.text)
    assert chinese(sentence) and "ftp" not in sentence
    assert beneath.startswith("invalid_webhook_url · ") and "ftp" in beneath


def test_refused_rules_in_chinese_read_as_a_chinese_sentence_on_both_rules_pages(client_as, partners):
    client = in_chinese(client_as("operator"))
    for rules in (f"{BASE}/partners/{partners['CoffeeCo']}/rules", f"{BASE}/partners/network-rules"):
        answer = post_form(client, rules, {"document": RULES.replace("multiplier: 2", "multiplier: 1")}, page=rules)
        assert answer.status_code == 422, rules
        sentence, beneath = alert(answer.text)
        assert chinese(sentence) and "campaigns" not in sentence, rules
        assert "campaigns.0" in beneath, rules  # the English detail stays, smaller


def approve(client, pending: str):
    return post_form(client, f"{BASE}/approvals/{pending}/approve", page=f"{BASE}/approvals")


def pending_ids(client) -> list[str]:
    return re.findall(r'data-pending="(\d+)"', client.get(f"{BASE}/approvals").text)


def outcome_cell(html: str, pending: str) -> tuple[str, str]:
    """A request's outcome summary as read (its raw JSON left out) and the raw JSON beside it."""
    row = html.split(f'data-pending="{pending}"', 1)[1].split("</tr>", 1)[0]
    cell = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[5]
    raw = re.search(r'<small class="[^"]*raw-outcome[^"]*"[^>]*>(.*?)</small>', cell, re.S)
    assert raw, cell
    summary = re.sub(r"<[^>]+>", " ", cell.replace(raw.group(0), ""))
    return unescape(re.sub(r"\s+", " ", summary).strip()), unescape(raw.group(1))


def test_a_member_adjustment_in_chinese_shows_the_network_funding_the_lot_and_a_readable_outcome(
        network, client_as, partners):
    coffee = partners["CoffeeCo"]
    member = network.enrol(coffee, phone="+8613800138000")["member_id"]
    network.earn(coffee, member, "e1", points=120)
    maker, checker = in_chinese(client_as("operator")), in_chinese(client_as("checker"))
    page = f"{BASE}/members/{member}"
    assert post_form(maker, f"{page}/adjustments", {"points": "50", "reason": "goodwill", "request_key": "k-1"},
                     page=page).status_code == 303
    [pending] = pending_ids(maker)
    assert approve(checker, pending).status_code == 303

    lots = cells(maker.get(f"{page}/lots").text)
    funded = [c for c in lots if "积分网络" in c]
    assert funded and not any(re.match(r"^network\b", c) for c in lots), lots

    summary, raw = outcome_cell(checker.get(f"{BASE}/approvals?status=all").text, pending)
    assert "entry_id" not in summary and "{" not in summary, summary
    assert "交易" in summary and "积分" in summary and "50" in summary, summary
    assert '"points": 50' in raw


def test_contract_outcomes_in_chinese_read_as_a_version_or_a_translated_refusal(network, client_as, partners,
                                                                               settings):
    coffee = partners["CoffeeCo"]
    maker, checker = in_chinese(client_as("operator")), in_chinese(client_as("checker"))
    contracts = f"{BASE}/partners/{coffee}/contracts"
    today = network.tx(lambda tx: cycle_date_for(tx.now, tx.settings), readonly=True)
    post_form(maker, contracts, {"billing": "postpaid", "point_value": "2"}, page=contracts)
    [applied] = pending_ids(maker)
    assert approve(checker, applied).status_code == 303
    post_form(maker, contracts, {"billing": "postpaid", "effective_from": today.isoformat()}, page=contracts)
    [refused] = pending_ids(maker)
    assert 'data-code="contract_not_at_boundary"' in approve(checker, refused).text

    html = checker.get(f"{BASE}/approvals?status=all").text
    summary, raw = outcome_cell(html, applied)
    assert "版本 2" in summary and "生效日期" in summary and "contract_version" not in summary, summary
    assert "contract_version" in raw
    summary, raw = outcome_cell(html, refused)
    assert "合同变更只能在未来的结算周期开始时生效。" in summary, summary
    assert "contract_not_at_boundary" in summary  # the code beneath the sentence
    assert "detail" in raw and "detail" not in summary.replace("contract_not_at_boundary", "")


def test_suspension_and_erasure_outcomes_in_chinese_read_as_the_status_and_the_time(network, client_as, partners):
    coffee = partners["CoffeeCo"]
    member = network.enrol(coffee, phone="+8613800138001")["member_id"]
    maker, checker = in_chinese(client_as("operator")), in_chinese(client_as("checker"))
    partner = f"{BASE}/partners/{coffee}"
    assert post_form(maker, f"{partner}/status", {"status": "suspended"}, page=partner).status_code == 303
    [suspension] = pending_ids(maker)
    assert approve(checker, suspension).status_code == 303
    page = f"{BASE}/members/{member}"
    post_form(maker, f"{page}/erasure", {"reason": "asked by the member"}, page=page)
    [erasure] = pending_ids(maker)
    assert approve(checker, erasure).status_code == 303

    html = checker.get(f"{BASE}/approvals?status=all").text
    summary, raw = outcome_cell(html, suspension)
    assert "状态: 已暂停" in summary and '"status": "suspended"' in raw, summary
    summary, raw = outcome_cell(html, erasure)
    assert "个人数据删除时间" in summary and "erased_at" not in summary and "erased_at" in raw, summary
