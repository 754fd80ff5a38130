"""Pages in 简体中文 show labels, not stored codes, and refusals in Chinese (docs/dashboard.md,
"Language"): entry and line kinds, tiers and their reasons, activity, reconciliation breaks, the
network as a party, action names; error pages and the sign-in throttle; Accept-Language before
sign-in; an empty table's pager."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest

from services.dashboard.i18n import translate
from services.dashboard.messages import problem_text, reason_text
from shared.access.errors import LoginThrottled
from tests.dashboard.conftest import BASE, csrf_of, make_client, post_form
from tests.dashboard.test_ledger_settlement import partner_log, reconcile
from tests.factories import make_member, make_partner

CYCLE = date(2026, 11, 20)


def in_chinese(client, page: str = f"{BASE}/"):
    assert post_form(client, f"{BASE}/language", {"language": "zh", "next": "/"}, page=page).status_code == 303
    return client


def cells(html: str) -> list[str]:
    """The text of every table cell and option (what a reader sees as a value)."""
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<(?:td|option)[^>]*>(.*?)</(?:td|option)>",
                                                                      html, re.S)]


@pytest.fixture
def partners(network) -> dict[str, str]:
    """CoffeeCo pays an issuance fee and BookMart a redemption fee: lines with the network as a party."""
    return {"CoffeeCo": make_partner(network, "CoffeeCo", issuance_fee="0.1"),
            "BookMart": make_partner(network, "BookMart", redemption_fee_rate="0.05")}


@pytest.fixture
def settled(network, clock, partners):
    """A member earns 1,500 points at CoffeeCo (silver: qualified) and spends 300 at BookMart;
    the cycle is settled."""
    coffee, book = partners["CoffeeCo"], partners["BookMart"]
    member = make_member(network, coffee, also_linked_to=(book,))
    earn = network.earn(coffee, member, "coffee-1", points=1500)
    clock.advance(minutes=5)
    burn = network.burn(book, member, "book-1", 300)
    clock.advance(days=1)
    network.settle(CYCLE)
    return {"coffee": coffee, "book": book, "member": member, "earn": earn, "burn": burn}


def test_a_code_without_a_label_is_shown_as_the_code():
    assert translate("kind.earn", "zh") == "积分发放" and translate("kind.earn", "en") == "earn"
    assert translate("kind.something_new", "zh") == "something_new"
    assert translate("action.some.new_action", "en") == "some.new_action"
    assert translate("tier.vip_black", "zh") == "vip_black"  # an operator's own tier name, as configured
    assert translate("no.such_key", "zh") == "no.such_key"  # other keys are unchanged


def test_the_member_page_in_chinese_shows_tier_activity_reason_and_kinds(client_as, settled):
    client = in_chinese(client_as("operator"))
    html = client.get(f"{BASE}/members/{settled['member']}").text
    shown = cells(html)
    assert "银卡会员" in html and "活跃" in html  # tier and activity KPIs
    assert "达到定级积分" in shown and "普通会员" in shown  # tier history: reason, from
    assert "积分发放" in shown and "积分兑换" in shown  # transaction kinds
    for code in ("earn", "burn", "qualified", "regular", "silver"):
        assert code not in shown, code
    assert not re.search(r'data-testid="(tier|activity)"><span class="label">[^<]*</span><span class="value">'
                         r"(silver|active)<", html)


def test_the_ledger_in_chinese_shows_kinds_lines_billing_and_the_network(client_as, settled):
    client = in_chinese(client_as("finance"))
    listing = client.get(f"{BASE}/ledger").text
    shown = cells(listing)
    assert "积分发放" in shown and "积分兑换" in shown and "冻结到期释放" in shown and "人工调整" in shown
    assert "全部" in shown and "∗" not in shown
    assert not {"earn", "burn", "hold_expiry", "adjustment"} & set(shown)
    assert '<option value="hold_expiry" >冻结到期释放</option>' in listing  # the filter still sends the code
    entry = cells(client.get(f"{BASE}/ledger/entries/{settled['burn']['entry_id']}").text)
    assert "积分兑换" in entry and "后付费" in entry and "兑换手续费" in entry and "积分网络" in entry
    assert not {"burn", "postpaid", "redemption_fee", "redemption", "network"} & set(entry)


def test_the_settlement_cycle_in_chinese_names_line_kinds_and_the_network(client_as, settled):
    client = in_chinese(client_as("finance"))
    matrix = client.get(f"{BASE}/settlement/{CYCLE}?tab=matrix").text
    shown = cells(matrix)
    assert "兑换手续费" in shown and "积分网络" in shown
    assert not {"redemption_fee", "issuance_fee", "redemption", "network"} & set(shown)
    chart = json.loads(re.search(r'id="matrix-chart-data">(.*?)</script>', matrix, re.S).group(1))
    legend = [d["label"] for d in chart["datasets"]]
    assert "兑换手续费" in legend and "redemption_fee" not in legend
    assert any("积分网络" in label for label in chart["labels"]) and not any(
        label.endswith("→ network") or label.startswith("network →") for label in chart["labels"])
    positions = client.get(f"{BASE}/settlement/{CYCLE}").text
    chart = json.loads(re.search(r'id="positions-chart-data">(.*?)</script>', positions, re.S).group(1))
    assert "积分网络" in chart["labels"] and "network" not in chart["labels"]
    assert any(c.startswith("积分网络") for c in cells(positions))


def test_reconciliation_breaks_in_chinese(client_as, settled):
    client = in_chinese(client_as("finance"))
    log = partner_log([("book-1", "burn", 300, "1.000000", "2026-11-20T02:05:00Z"),
                       ("book-9", "burn", 10, "10", "2026-11-20T03:00:00Z")])
    html = reconcile(client, settled["book"], log).text
    shown = cells(html)
    assert "金额不一致" in shown and "网络无此记录" in shown
    assert "对账单中该参考号的金额合计不同" in shown and "账本中没有该参考号" in shown
    assert not {"amount_mismatch", "missing_on_network", "no such reference in the ledger"} & set(shown)
    assert 'data-break="amount_mismatch"' in html  # the code stays for scripts and tests


def test_break_reasons_with_values_are_translated():
    assert reason_text("posted in cycle 2026-11-19, not this one", "zh") == "记账于结算日 2026-11-19，不在本结算日"
    assert reason_text("the partner's log lists this reference on 3 lines and the statement does not", "zh") \
        == "商户流水中该参考号出现在 3 行，而对账单中没有"
    assert "冻结扣除" in reason_text("your own capture (of hold h-1) was posted without a reference: its lines are "
                                    "on the statement under this transaction id, which the log does not list", "zh")
    assert reason_text("something new", "zh") == "something new"
    assert reason_text("different operation", "en") == "different operation"


def test_approvals_and_audit_in_chinese_name_actions(network, client_as, settled):
    maker, checker = client_as("operator"), in_chinese(client_as("checker"))
    page = f"{BASE}/members/{settled['member']}"
    post_form(maker, f"{page}/adjustments", {"points": "-20", "reason": "dup", "request_key": "k-1"}, page=page)
    approvals = checker.get(f"{BASE}/approvals?status=all").text
    assert "会员积分调整" in cells(approvals) and "member_adjustment" not in cells(approvals)
    assert ">全部</a>" in approvals and "∗" not in approvals
    audit = checker.get(f"{BASE}/audit").text
    shown = cells(audit)
    assert any(c.startswith("提交审批") for c in shown) and any(c.startswith("设置语言") for c in shown)
    assert not {"approval.requested", "user.language_set"} & set(shown)  # the code is only beside the name


def test_error_pages_in_chinese(network, client_as, settled, monkeypatch):
    client = in_chinese(client_as("operator"))

    def alert(answer) -> str:
        return re.sub(r"<[^>]+>", "", re.search(r'role="alert">(.*?)</p>', answer.text, re.S).group(1))

    unsettled = client.get(f"{BASE}/settlement/2026-11-01")
    assert unsettled.status_code == 404 and alert(unsettled).startswith("结算日 2026-11-01 尚未结算。")
    assert "unknown_cycle" in alert(unsettled)  # the code beside it, smaller
    bad_date = client.get(f"{BASE}/ledger", params={"from": "yesterday"})
    assert bad_date.status_code == 422
    assert alert(bad_date).startswith("from 应为 YYYY-MM-DD 格式的日期（如 2026-12-01），而不是 &#39;yesterday&#39;。")
    not_an_int = client.get(f"{BASE}/ledger", params={"limit": "lots"})
    assert not_an_int.status_code == 422 and alert(not_an_int).startswith("limit 应为整数。")
    too_many = client.get(f"{BASE}/ledger", params={"limit": "5000"})
    assert alert(too_many).startswith("limit 不能大于 200。")
    missing = client.get(f"{BASE}/no-such-page")
    assert missing.status_code == 404 and alert(missing).startswith("未找到该页面或记录。")
    assert "Not Found" not in alert(missing).split("not_found")[0]
    # an adjustment that takes more than the member has, refused at approval
    maker = client_as("checker")
    page = f"{BASE}/members/{settled['member']}"
    post_form(maker, f"{page}/adjustments", {"points": "-5000", "reason": "x", "request_key": "k-2"}, page=page)
    pending = client.get(f"{BASE}/approvals").text.split('data-pending="')[1].split('"')[0]
    refused = post_form(client, f"{BASE}/approvals/{pending}/approve", page=f"{BASE}/approvals")
    assert refused.status_code == 409
    assert alert(refused).startswith("会员可用积分为 1200，调整无法扣减 5000 积分。")

    from services.dashboard.views import ledger

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(ledger, "entries_page", broken)
    client._transport.raise_server_exceptions = False  # the page a browser gets, not the exception
    answer = client.get(f"{BASE}/ledger")
    assert answer.status_code == 500 and alert(answer).startswith("后台未能响应；请重试，或联系网络运营人员。")
    assert "boom" not in answer.text


def test_the_adjustment_forms_refusal_is_in_chinese(client_as, settled):
    client = in_chinese(client_as("operator"))
    page = f"{BASE}/members/{settled['member']}"
    answer = post_form(client, f"{page}/adjustments", {"points": "0", "reason": "x"}, page=page)
    assert answer.status_code == 422 and "调整 0 积分不会有任何变化。" in answer.text


def test_common_refusals_keep_their_values_in_chinese():
    assert problem_text("insufficient_points", "member has 1543211 points available, 2000000 asked", "zh") \
        == "会员可用积分为 1543211，不足 2000000。"
    assert problem_text("unknown_partner", "no partner p_123", "zh") == "没有合作伙伴 p_123。"
    assert problem_text("unknown_member", "member m_1 was merged into m_2: erase the survivor", "zh") \
        == "会员 m_1 已合并至 m_2：请删除合并后的会员。"
    assert problem_text("validation_failed", "something unusual", "zh") == "输入无效。"
    assert problem_text("some_new_code", "text", "zh") == "请求被拒绝。"
    assert problem_text("unknown_partner", "no partner p_123", "en") == "no partner p_123"


def test_the_sign_in_throttle_speaks_chinese(network, staff, monkeypatch):
    from services.dashboard.views import session as views_session

    def throttled(*_args):
        raise LoginThrottled("too many failed sign-ins; try again in 16 minutes", retry_after=900)

    monkeypatch.setattr(views_session.throttle, "admit", throttled)
    client = make_client(network)
    try:
        form = client.get(f"{BASE}/login", headers={"accept-language": "zh-CN,zh;q=0.9"})
        answer = client.post(f"{BASE}/login", data={"email": staff["operator"], "password": "x",
                                                     "csrf_token": csrf_of(form.text)},
                             headers={"origin": "http://testserver", "accept-language": "zh-CN,zh;q=0.9"})
        assert answer.status_code == 429
        assert "登录失败次数过多，请在 16 分钟后重试。" in answer.text and 'data-code="login_throttled"' in answer.text
    finally:
        client.close()


@pytest.mark.parametrize("header, chinese", [("zh-CN,zh;q=0.9,en;q=0.8", True), ("zh-TW", True),
                                             ("fr-FR, zh;q=0.5", True), ("en-US,en;q=0.9,zh-CN;q=0.8", False),
                                             ("fr", False), ("zh;q=0, en;q=0.1", False)])
def test_the_sign_in_page_follows_accept_language(network, staff, header, chinese):
    client = make_client(network)
    try:
        html = client.get(f"{BASE}/login", headers={"accept-language": header}).text
        assert ("<h1>Pointsnet 管理后台</h1>" in html) is chinese
    finally:
        client.close()


def test_a_language_cookie_wins_over_accept_language(network, staff):
    client = make_client(network)
    try:
        form = client.get(f"{BASE}/login").text
        assert client.post(f"{BASE}/language", data={"language": "en", "next": "/login", "csrf_token": csrf_of(form)},
                           headers={"origin": "http://testserver"}).status_code == 303
        html = client.get(f"{BASE}/login", headers={"accept-language": "zh-CN"}).text
        assert "<h1>Pointsnet dashboard</h1>" in html
    finally:
        client.close()


def test_an_empty_tables_pager_says_nothing_but_its_count(client_as, settled):
    client = client_as("operator")
    empty = client.get(f"{BASE}/audit", params={"action": "no.such_action"}).text
    assert "0 items" in empty and "0–0 of 0" not in empty
    in_chinese(client)
    empty = client.get(f"{BASE}/audit", params={"action": "no.such_action"}).text
    assert "共 0 条" in empty and "第 0–0 条" not in empty
    full = client.get(f"{BASE}/audit").text
    assert re.search(r"第 1–\d+ 条，共 \d+ 条", full)


def test_marking_a_recorded_payment_again_is_refused_in_chinese_naming_the_payment(network, client_as, settled):
    """A payment recorded already is ``already_recorded`` with its status, when and bank reference in the
    Chinese sentence too; ``nothing_due`` keeps its own sentence for a party with nothing to pay."""
    network.settings.four_eyes_actions = frozenset()
    client = in_chinese(client_as("operator"))
    page = f"{BASE}/settlement/{CYCLE}"
    coffee, book = settled["coffee"], settled["book"]
    assert post_form(client, f"{page}/parties/{coffee}/paid", {"bank_reference": "BK-1"}, page=page).status_code == 303
    assert post_form(client, f"{page}/parties/{book}/paid", {"bank_reference": "IN-2"}, page=page).status_code == 303
    when = network.clock.now().isoformat().replace("+00:00", "Z")
    again = post_form(client, f"{page}/parties/{coffee}/paid", {"bank_reference": "BK-2"}, page=page)
    assert again.status_code == 409 and 'data-code="already_recorded"' in again.text
    assert f"{coffee} 在结算日 {CYCLE} 的结算已登记为已付款（登记时间 {when}，银行流水号 BK-1），无需重复登记。" in again.text
    received = post_form(client, f"{page}/parties/{book}/paid", {"bank_reference": "IN-3"}, page=page)
    assert f"{book} 在结算日 {CYCLE} 的结算已登记为已收款（登记时间 {when}，银行流水号 IN-2），无需重复登记。" \
        in received.text
    assert problem_text("already_recorded", "a detail of no known form", "zh") == "该笔结算的付款已登记，无需重复登记。"
    assert problem_text("nothing_due", f"no settlement due for network in cycle {CYCLE}", "zh") \
        == f"network 在结算日 {CYCLE} 没有应付款项。"


def test_the_buy_out_break_reason_is_translated():
    from shared.settlement.reconcile import _unreferenced_break

    reason = _unreferenced_break("ent_1", {"kind": "adjustment", "amount": -240_000_000, "buy_out": True}).reason
    assert reason_text(reason, "zh") == "贵方退出网络时由网络记账的未兑付积分买断：其明细以交易 ID 列在对账单上，而流水中没有该交易 ID"
