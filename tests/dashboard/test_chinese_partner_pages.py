"""The partner pages, a member's lots and the Approvals outcome in 简体中文 (docs/dashboard.md, "Language"):
a refusal reads as a translated sentence with its code and English detail beneath, smaller, and every
refusal the partner pages can give has a sentence of its own; the network that funds a lot is named by
its label, a partner by its name; a decided request's outcome is a readable summary, its raw JSON kept
beside it, smaller."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from datetime import timedelta
from html import unescape

from services.dashboard.messages import GENERAL, REFUSED, problem_text
from shared.errors import PointsnetError
from shared.ledger.cycles import cycle_date_for
from tests.dashboard.conftest import BASE, post_form
from tests.dashboard.test_chinese_texts import cells, in_chinese
from tests.dashboard.test_partners import ONBOARD, RULES, pem


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
    # a second version from the same day, valid when filed; once the first is approved it no longer is
    post_form(maker, contracts, {"billing": "postpaid", "effective_from": str(today + timedelta(days=1))},
              page=contracts)
    [refused] = [pending for pending in pending_ids(maker) if pending != applied]
    assert approve(checker, applied).status_code == 303
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


# -- every refusal the partner pages can give has its own Chinese sentence ---------------------------

# the modules whose refusals reach the partner pages: the pages' own module and, through its imports,
# the shared partner, webhook, rules and access modules and the dashboard's own (actions, security, …)
PARTNER_PAGES = "services.dashboard.views.partners"
REACHED = ("shared.partners.", "shared.webhooks.", "shared.rules.", "shared.access.", "services.dashboard.")


def _is_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def _scanned(module) -> tuple[dict[str, str], set[str]]:
    """The codes of the refusals a module raises or chooses to raise (``error = A if … else B``): every
    PointsnetError class it names, except in an ``except`` clause or as a class's base; and the modules
    it imports that refusals may come from."""
    nodes = list(ast.walk(ast.parse(inspect.getsource(module))))
    skipped, imported = set(), set()
    for node in nodes:
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            skipped.update(map(id, ast.walk(node.type)))
        elif isinstance(node, ast.ClassDef):
            skipped.update(id(n) for base in node.bases for n in ast.walk(base))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}  # or a module
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    codes = {}
    for node in nodes:
        named = None
        if isinstance(node, ast.Name) and id(node) not in skipped:
            named = vars(module).get(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and id(node) not in skipped:
            owner = vars(module).get(node.value.id)
            named = getattr(owner, node.attr, None) if inspect.ismodule(owner) else None
        if inspect.isclass(named) and issubclass(named, PointsnetError):
            codes[named.code] = f"{module.__name__}.{named.__name__}"
    return codes, {name for name in imported if name.startswith(REACHED) and _is_module(name)}


def partner_page_refusals() -> dict[str, str]:
    """Every refusal code the partner pages can answer, found in the code (with one class raising it)."""
    codes: dict[str, str] = {}
    seen, todo = set(), [PARTNER_PAGES]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            found, imported = _scanned(importlib.import_module(name))
            codes |= found
            todo.extend(imported - seen)
    return codes


def test_every_refusal_the_partner_pages_can_give_has_its_own_chinese_sentence():
    codes = partner_page_refusals()
    # the enumeration finds what the pages' forms and the shared partner modules raise
    assert {"invalid_webhook_url", "too_many_keys", "key_previously_revoked", "key_already_registered",
            "rotation_overlap_running", "unknown_webhook_endpoint", "delivery_pending", "endpoint_disabled",
            "partner_already_suspended", "partner_already_active", "partner_terminated", "tiers_switched_off",
            "contract_not_at_boundary", "approval_already_pending", "unknown_key", "validation_failed"} <= set(codes)
    general = GENERAL["validation_failed"][1]
    sentences = {}
    for code, raised_by in sorted(codes.items()):
        sentence = problem_text(code, "a detail of no known form", "zh")
        assert code in GENERAL and chinese(sentence), (code, raised_by)
        assert sentence != REFUSED[1] and (code == "validation_failed" or sentence != general), (code, raised_by)
        sentences.setdefault(sentence, []).append(code)
    assert all(len(same) == 1 for same in sentences.values()), sentences


def test_refused_keys_in_chinese_say_why_in_their_own_sentence(client_as, partners):
    client = in_chinese(client_as("operator"))
    coffee, book = (f"{BASE}/partners/{partners[name]}/keys" for name in ("CoffeeCo", "BookMart"))
    first = pem()
    for text in (first, pem()):
        assert post_form(client, coffee, {"public_key": text}, page=coffee).status_code == 303
    third = post_form(client, coffee, {"public_key": pem()}, page=coffee)
    assert third.status_code == 409 and alert(third.text) == (
        "每个合作伙伴最多有两个有效公钥：请先吊销其中一个，再添加新公钥。",
        "too_many_keys · revoke one of the two active keys before adding another")

    active = set(re.findall(r'/keys/([^/"]+)/revoke', client.get(coffee).text))
    assert len(active) == 2
    for key_id in active:
        assert post_form(client, f"{coffee}/{key_id}/revoke", page=coffee).status_code == 303
    revoked = post_form(client, book, {"public_key": first}, page=book)
    sentence, beneath = alert(revoked.text)
    assert revoked.status_code == 409 and beneath.startswith("key_previously_revoked · ")
    assert re.fullmatch(rf"该公钥曾登记为 key_\S+（合作伙伴 {partners['CoffeeCo']}）并已被吊销，永远不会再被接受："
                        r"请生成新的密钥对。", sentence), sentence

    registered = pem()
    assert post_form(client, coffee, {"public_key": registered}, page=coffee).status_code == 303
    twice = post_form(client, book, {"public_key": registered}, page=book)
    sentence, beneath = alert(twice.text)
    assert twice.status_code == 409 and beneath.startswith("key_already_registered · ")
    assert re.fullmatch(rf"该公钥已登记为 key_\S+（合作伙伴 {partners['CoffeeCo']}），每个公钥只能登记一次："
                        r"请生成新的密钥对。", sentence), sentence


def test_refused_webhook_changes_in_chinese_say_why_in_their_own_sentence(client_as, partners):
    client = in_chinese(client_as("operator"))
    hooks = f"{BASE}/partners/{partners['CoffeeCo']}/webhooks"
    plain = post_form(client, hooks, {"url": "http://example.org/hook"}, page=hooks)
    assert alert(plain.text)[0] == "Webhook URL 须使用 https（仅本机 localhost 可使用 http）。"
    unset = post_form(client, f"{hooks}/rotate-secret", {"overlap_hours": "1"}, page=hooks)
    assert alert(unset.text)[0] == f"合作伙伴 {partners['CoffeeCo']} 尚未设置 Webhook URL，请先设置。"
    assert post_form(client, hooks, {"url": "http://127.0.0.1:9/hook"}, page=hooks).status_code == 200
    assert post_form(client, f"{hooks}/rotate-secret", {"overlap_hours": "1"}, page=hooks).status_code == 200
    running = post_form(client, f"{hooks}/rotate-secret", {"overlap_hours": "1"}, page=hooks)
    sentence, beneath = alert(running.text)
    assert running.status_code == 409 and beneath.startswith("rotation_overlap_running · ")
    assert sentence.startswith(f"合作伙伴 {partners['CoffeeCo']} 的上一个 Webhook 签名密钥在 ") and "重叠" in sentence


def test_a_stale_status_form_in_chinese_says_the_partner_already_has_that_status(client_as, partners):
    client = in_chinese(client_as("operator"))
    partner = f"{BASE}/partners/{partners['CoffeeCo']}"
    answer = post_form(client, f"{partner}/status", {"status": "active"}, page=partner)
    assert answer.status_code == 409 and 'data-code="partner_already_active"' in answer.text
    assert f"合作伙伴 {partners['CoffeeCo']} 已处于正常状态。" in unescape(answer.text)


# -- the lots page names the partner funding a lot --------------------------------------------------

def test_a_lot_funded_by_a_partner_shows_the_partners_name_in_either_language(network, client_as, partners):
    coffee = partners["CoffeeCo"]
    member = network.enrol(coffee, phone="+8613800138002")["member_id"]
    network.earn(coffee, member, "e1", points=120)
    for client, billing in ((client_as("finance"), "postpaid"), (in_chinese(client_as("operator")), "后付费")):
        html = client.get(f"{BASE}/members/{member}/lots").text
        funder = re.search(rf'<td data-funder="{coffee}">(.*?)</td>', html, re.S)
        assert funder, html
        shown = re.sub(r"<[^>]+>", " ", funder.group(1)).split()
        assert shown[:2] == ["CoffeeCo", f"({billing})"] and shown[2:] == [coffee], shown  # the id beneath, smaller
