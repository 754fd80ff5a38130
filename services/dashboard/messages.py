"""Refusals and reconciliation reasons a clerk meets, in the page's language.

A refusal has a stable code and an English detail. In English the detail is the message. In Chinese
the message is the translated sentence of the detail's known form (its values kept: a member's
available points, a field and what was typed, minutes to wait), else the code's general sentence;
the page shows the code and the English detail beside it, smaller. Only the refusals the dashboard's
clerks meet are translated here (docs/dashboard.md, "Language"); any other shows the general
sentence of its family (``请求被拒绝``) with the detail.
"""

from __future__ import annotations

import re

from services.dashboard.i18n import translate

# the sentence for a code when its detail has no known form
GENERAL: dict[str, tuple[str, str]] = {
    "not_found": ("Not found.", "未找到该页面或记录。"),
    "http_error": ("The request cannot be answered.", "无法处理该请求。"),
    "internal_error": ("The dashboard failed to answer; try again, or tell the network's operators.",
                       "后台未能响应；请重试，或联系网络运营人员。"),
    "validation_failed": ("Invalid input.", "输入无效。"),
    "scratch_unavailable": ("The check needs a writable temporary directory, which the server lacks; tell the "
                            "network's operators.", "服务器没有可写的临时目录，无法进行核对；请联系网络运营人员。"),
    "not_signed_in": ("Sign in first.", "请先登录。"),
    "login_throttled": ("Too many failed sign-ins; try again later.", "登录失败次数过多，请稍后重试。"),
    "unknown_partner": ("No such partner.", "没有该合作伙伴。"),
    "unknown_member": ("No such member.", "没有该会员。"),
    "unknown_user": ("No such dashboard user.", "没有该后台用户。"),
    "unknown_cycle": ("No such settled cycle.", "没有该结算日的结算记录。"),
    "unknown_key": ("No such key.", "没有该密钥。"),
    "unknown_delivery": ("No such webhook delivery.", "没有该 Webhook 投递记录。"),
    "unknown_reference": ("No such reference.", "没有该参考号。"),
    "unknown_hold": ("No such hold.", "没有该冻结。"),
    "insufficient_points": ("Not enough points.", "积分不足。"),
    "invalid_points": ("Invalid points.", "积分数无效。"),
    "holds_open": ("The member has open holds.", "该会员有未完成的冻结。"),
    "member_erased": ("The member was erased.", "该会员已删除。"),
    "nothing_due": ("No settlement is due for this party and cycle.", "该参与方在此结算日没有应付款项。"),
    "already_recorded": ("This settlement's payment is already recorded.", "该笔结算的付款已登记，无需重复登记。"),
    "amount_exceeds_due": ("The amount is more than what is outstanding of the settlement.",
                           "金额超过该笔结算的未付余额。"),
    "float_exhausted": ("The partner's prepaid float does not cover this issuance: it needs a top-up.",
                        "该合作伙伴的预付资金不足以支付本次积分发放，需要先充值。"),
    "float_total_too_large": ("The partner's prepaid float has given the most its total can record: move the "
                              "partner to postpaid billing.",
                              "该合作伙伴的预付资金累计发放额已达可记录的上限，需改为后付模式。"),
    "topup_conflict": ("This bank reference was already recorded with another amount.",
                       "该银行流水号已登记为另一金额的充值。"),
    "not_prepaid": ("The partner is not prepaid: it has no float.", "该合作伙伴不是预付模式，没有预付资金。"),
    "invalid_amount": ("The amount is not valid.", "金额无效。"),
    "four_eyes_required": ("A second operator must approve this.", "需要另一位运营人员批准。"),
    "action_not_pending": ("The request was already decided.", "该申请已处理。"),
    "approval_already_pending": ("The same request is already waiting for a second operator.",
                                 "相同的申请已在等待另一位运营人员批准。"),
    "request_already_done": ("The same request was already done.", "相同的请求已执行。"),
    "action_failed": ("The action failed and changed nothing.", "操作失败，未做任何更改。"),
    "action_not_run": ("The database did not answer; the request is still waiting.",
                       "数据库未响应；该申请仍在等待中。"),
    "partner_suspended": ("The partner is suspended.", "该合作伙伴已暂停。"),
    "contract_not_at_boundary": ("Contract changes take effect at a future cycle boundary.",
                                 "合同变更只能在未来的结算周期开始时生效。"),
    # the partner pages' refusals (tests/dashboard/test_chinese_partner_pages.py lists them from the code)
    "forbidden": ("Your role does not allow this.", "您的角色无权执行此操作。"),
    "csrf_rejected": ("The form was stale or not sent by this dashboard. Reload the page and try again.",
                      "表单已过期或来源无效，请刷新页面后重试。"),
    "partner_terminated": ("The partner has left the network.", "该合作伙伴已退出网络。"),
    "termination_conflict": ("The partner was already terminated on other terms; a termination's terms cannot change.",
                             "该合作伙伴已按其他条款终止；终止条款不可更改。"),
    "partner_already_suspended": ("The partner is already suspended.", "该合作伙伴已处于暂停状态。"),
    "partner_already_active": ("The partner is already active.", "该合作伙伴已处于正常状态。"),
    "too_many_keys": ("A partner has at most two active keys.",
                      "每个合作伙伴最多有两个有效公钥：请先吊销其中一个，再添加新公钥。"),
    "key_previously_revoked": ("This key was revoked; it is never accepted again.",
                               "该公钥曾被吊销，永远不会再被接受：请生成新的密钥对。"),
    "key_already_registered": ("This key is already registered.",
                               "该公钥已经登记过，每个公钥只能登记一次：请生成新的密钥对。"),
    "invalid_webhook_url": ("The webhook URL is not acceptable.", "该 Webhook URL 不可用。"),
    "unknown_webhook_endpoint": ("The partner has no webhook endpoint.", "该合作伙伴尚未设置 Webhook URL。"),
    "rotation_overlap_running": ("The previous webhook secret's overlap is still running.",
                                 "上一个 Webhook 签名密钥仍在重叠期内：请在重叠期结束后再轮换，"
                                 "或将重叠时长设为 0 以立即停用所有旧密钥。"),
    "delivery_pending": ("The delivery is being sent right now: replay it once its attempt is recorded.",
                         "该投递正在发送中：请在本次尝试记录后再重新发送。"),
    "endpoint_disabled": ("The delivery's webhook endpoint is disabled: nothing would be sent.",
                          "该合作伙伴的 Webhook 已停用，重新发送不会发出任何内容：请先重新设置 Webhook URL，再重新发送。"),
    "unknown_event_type": ("Not a webhook event type.", "不是 Webhook 事件类型。"),
    "delivery_cancelled": ("The delivery was cancelled: it is never sent.",
                           "该投递已取消，永远不会发送（会员已撤回同意或已被删除，或合作伙伴已终止）。"),
    "member_not_linked": ("The delivery names a member no longer linked to the partner, or erased (or is a "
                          "member.unlinked the member has undone by linking again): it is not sent again.",
                          "该投递涉及的会员已不再关联该合作伙伴，或已被删除（或是会员此后已重新关联的 member.unlinked）："
                          "不会再次发送。"),
    "tiers_switched_off": ("Tiers are switched off.",
                           "会员等级功能已关闭（POINTSNET_TIERS 中 enabled 为 false）：规则中不能有 tier_multipliers，"
                           "请删除它们，或先开启会员等级。"),
}
REFUSED = ("Request refused.", "请求被拒绝。")

# a detail's known forms: (code, pattern, Chinese sentence with the pattern's groups and the error's extras)
FORMS: list[tuple[str, re.Pattern, str]] = [(code, re.compile(pattern), zh) for code, pattern, zh in [
    ("insufficient_points", r"^member has (?P<available>-?\d+) points available, (?P<points>\d+) asked$",
     "会员可用积分为 {available}，不足 {points}。"),
    ("insufficient_points", r"^member has (?P<available>-?\d+) points available; an adjustment cannot take "
                            r"(?P<points>-?\d+)$", "会员可用积分为 {available}，调整无法扣减 {points} 积分。"),
    ("login_throttled", r"^too many failed sign-ins; try again in (?P<minutes>\d+) minutes$",
     "登录失败次数过多，请在 {minutes} 分钟后重试。"),
    ("unknown_cycle", r"^cycle (?P<cycle>\S+) has not been settled$", "结算日 {cycle} 尚未结算。"),
    ("unknown_partner", r"^no partner (?P<partner>.+)$", "没有合作伙伴 {partner}。"),
    ("unknown_user", r"^no dashboard user (?P<user>.+)$", "没有后台用户 {user}。"),
    ("unknown_member", r"^member (?P<member>\S+) was erased$", "会员 {member} 的个人数据已删除。"),
    ("unknown_member", r"^member (?P<member>\S+) was merged into (?P<survivor>\S+): erase the survivor$",
     "会员 {member} 已合并至 {survivor}：请删除合并后的会员。"),
    ("member_erased", r"^member (?P<member>\S+) is already erased$", "会员 {member} 的个人数据已删除。"),
    ("holds_open", r"^member (?P<member>\S+) has (?P<n>\d+) open holds; capture or void them first$",
     "会员 {member} 有 {n} 笔未完成的冻结，请先扣除或取消。"),
    ("nothing_due", r"^no settlement due for (?P<party>\S+) in cycle (?P<cycle>\S+)$",
     "{party} 在结算日 {cycle} 没有应付款项。"),
    ("already_recorded", r"^the settlement of (?P<party>\S+) in cycle (?P<cycle>\S+) is already paid: recorded "
                         r"(?P<when>.+?) with bank reference (?P<reference>.*)$",
     "{party} 在结算日 {cycle} 的结算已登记为已付款（登记时间 {when}，银行流水号 {reference}），无需重复登记。"),
    ("already_recorded", r"^the settlement of (?P<party>\S+) in cycle (?P<cycle>\S+) is already received: recorded "
                         r"(?P<when>.+?) with bank reference (?P<reference>.*)$",
     "{party} 在结算日 {cycle} 的结算已登记为已收款（登记时间 {when}，银行流水号 {reference}），无需重复登记。"),
    ("already_recorded", r"^a payment of (?P<amount>\d+) \(minor units\) with bank reference (?P<reference>.*) is "
                         r"already recorded for the settlement of (?P<party>\S+) in cycle (?P<cycle>\S+): recorded "
                         r"(?P<when>.+)$",
     "{party} 在结算日 {cycle} 的结算已登记过银行流水号为 {reference} 的付款 {amount}（最小货币单位，登记时间 {when}），"
     "无需重复登记。"),
    ("amount_exceeds_due", r"^the settlement of (?P<party>\S+) in cycle (?P<cycle>\S+) has (?P<outstanding>\d+) "
                           r"outstanding \(minor units; (?P<paid>\d+) of (?P<due>\d+) recorded\): a payment of "
                           r"(?P<amount>\d+) is more than that$",
     "{party} 在结算日 {cycle} 的结算未付余额为 {outstanding}（最小货币单位；共 {due}，已登记 {paid}），"
     "付款金额 {amount} 超过未付余额。"),
    ("validation_failed", r"^the amount is a plain decimal of major units \((?P<example>[^)]*)\), .*, not (?P<value>.*)$",
     "金额须为以元等主币单位计的普通小数（如 {example}），不带正负号或千位分隔符，小数位数不超过该币种的位数，而不是 {value}。"),
    ("validation_failed", r"^the amount is more than 0, or blank for the whole amount outstanding$",
     "金额须大于 0；留空则登记全部未付余额。"),
    ("invalid_points", r"^points must be a whole number in the digits 0-9, not (?P<value>.*)$",
     "积分须为整数（数字 0-9），而不是 {value}。"),
    ("invalid_points", r"^an adjustment is at most (?P<limit>\d+) points either way$",
     "一次调整最多增减 {limit} 积分。"),
    ("invalid_points", r"^an adjustment of 0 points changes nothing$", "调整 0 积分不会有任何变化。"),
    ("validation_failed", r"^(?P<field>.+?) is a date YYYY-MM-DD \(e\.g\. 2026-12-01\), not (?P<value>.*)$",
     "{field} 应为 YYYY-MM-DD 格式的日期（如 2026-12-01），而不是 {value}。"),
    ("validation_failed", r"^(?P<field>.+?) is an RFC 3339 instant with its offset .*, not (?P<value>.*)$",
     "{field} 应为带时区偏移的 RFC 3339 时间（如 2026-12-01T00:00:00+08:00），而不是 {value}。"),
    ("validation_failed", r"^a NUL character \(U\+0000\) is not accepted in the page's (?P<where>.+)$",
     "页面地址、查询参数或表单中不能含有 NUL 字符（U+0000）。"),
    ("validation_failed", r"^give a reason of 1 to (?P<limit>\d+) characters$", "请填写 1 到 {limit} 个字符的原因。"),
    ("validation_failed", r"^a bank reference \(1 to (?P<limit>\d+) characters\) is required$",
     "请填写银行流水号（1 到 {limit} 个字符）。"),
    ("validation_failed", r"^choose the partner whose log this is$", "请选择该流水所属的商户。"),
    ("validation_failed", r"^attach the partner's log .*$", "请附上商户流水（CSV：reference,kind,points,amount,time）。"),
    ("validation_failed", r"^the partner's log is not UTF-8 text$", "商户流水不是 UTF-8 文本。"),
    ("validation_failed", r"^the form has no request key.*$", "表单缺少请求键：请重新打开会员页面并填写表单。"),
    ("partner_terminated", r"^partner (?P<partner>\S+) was terminated; it cannot be \w+ again$",
     "合作伙伴 {partner} 已退出网络，不能再更改其状态。"),
    ("partner_already_suspended", r"^partner (?P<partner>\S+) is already suspended$", "合作伙伴 {partner} 已处于暂停状态。"),
    ("partner_already_active", r"^partner (?P<partner>\S+) is already active$", "合作伙伴 {partner} 已处于正常状态。"),
    ("key_previously_revoked", r"^this public key was registered as (?P<key>\S+) \(partner (?P<partner>\S+)\) "
                               r"and revoked.*$",
     "该公钥曾登记为 {key}（合作伙伴 {partner}）并已被吊销，永远不会再被接受：请生成新的密钥对。"),
    ("key_already_registered", r"^this public key is already registered as (?P<key>\S+) \(partner "
                               r"(?P<partner>\S+)\);.*$",
     "该公钥已登记为 {key}（合作伙伴 {partner}），每个公钥只能登记一次：请生成新的密钥对。"),
    ("invalid_webhook_url", r"^webhook URLs must use https .*$", "Webhook URL 须使用 https（仅本机 localhost 可使用 http）。"),
    ("invalid_webhook_url", r"^(?P<url>.*) is not an absolute http\(s\) URL$",
     "该地址不是完整的 http(s) URL（例如 https://example.com/hooks）。"),
    ("invalid_webhook_url", r"^(?P<url>.*) is not a valid URL \(.*\)$", "该地址不是有效的 URL。"),
    ("invalid_webhook_url", r"^(?P<url>.*): the port must be a number from 1 to 65535$",
     "Webhook URL 的端口须为 1 到 65535 之间的数字。"),
    ("invalid_webhook_url", r"^webhook URLs must not carry credentials$", "Webhook URL 中不能包含用户名或密码。"),
    ("invalid_webhook_url", r"^webhook URLs are at most (?P<limit>\d+) characters$", "Webhook URL 最多 {limit} 个字符。"),
    ("invalid_webhook_url", r"^webhook URL host cannot be used: .*$", "Webhook URL 的主机名无法使用。"),
    ("invalid_webhook_url", r"^webhook URL host (?P<host>\S+) is a loopback, private, link-local or reserved "
                            r"address \((?P<address>[^)]*)\).*$",
     "Webhook URL 的主机 {host} 是回环、内网、链路本地或保留地址（{address}），不能使用；"
     "运营方可通过 POINTSNET_WEBHOOK_ALLOW_PRIVATE_TARGETS 允许此类地址。"),
    ("unknown_webhook_endpoint", r"^partner (?P<partner>\S+) has no webhook endpoint; set one first$",
     "合作伙伴 {partner} 尚未设置 Webhook URL，请先设置。"),
    ("rotation_overlap_running", r"^partner (?P<partner>\S+)'s previous webhook secret still signs until "
                                 r"(?P<ends>\S+) .*$",
     "合作伙伴 {partner} 的上一个 Webhook 签名密钥在 {ends} 之前仍然有效（上次轮换的重叠期）："
     "请在此之后再轮换，或将重叠时长设为 0 以立即停用所有旧密钥。"),
]]

# request fields (pydantic's errors) by their error type
FIELD_ERRORS: dict[str, str] = {
    "int_parsing": "{field} 应为整数",
    "int_type": "{field} 应为整数",
    "missing": "缺少 {field}",
    "greater_than_equal": "{field} 不能小于 {ge}",
    "greater_than": "{field} 须大于 {gt}",
    "less_than_equal": "{field} 不能大于 {le}",
    "less_than": "{field} 须小于 {lt}",
    "string_too_long": "{field} 最多 {max_length} 个字符",
    "string_too_short": "{field} 至少 {min_length} 个字符",
    "string_pattern_mismatch": "{field} 的格式不正确",
}

# the reasons of reconciliation breaks (shared.settlement.reconcile)
REASONS: list[tuple[re.Pattern, str]] = [(re.compile(pattern), zh) for pattern, zh in [
    (r"^different operation$", "交易类型不同"),
    (r"^the ledger entry has different points$", "账本交易的积分不同"),
    (r"^the statement's amounts for this reference sum differently$", "对账单中该参考号的金额合计不同"),
    (r"^on the statement but not in the partner's log$", "在对账单中，但不在商户流水中"),
    (r"^no such reference in the ledger$", "账本中没有该参考号"),
    (r"^posted in cycle (?P<cycle>\S+), not this one$", "记账于结算日 {cycle}，不在本结算日"),
    (r"^the entry moves no money between parties$", "该交易在参与方之间没有资金往来"),
    (r"^the partner's log lists this reference on (?P<n>\d+) lines$", "商户流水中该参考号出现在 {n} 行"),
    (r"^the partner's log lists this reference on (?P<n>\d+) lines and the statement does not$",
     "商户流水中该参考号出现在 {n} 行，而对账单中没有"),
    (r"^the referral bonus your earn (?P<earn>\S+) paid .*$",
     "贵方积分交易 {earn} 产生的推荐奖励：其明细以交易 ID 列在对账单上，而流水中没有该交易 ID"),
    (r"^the buy-out of your open points when you left the network .*$",
     "贵方退出网络时由网络记账的未兑付积分买断：其明细以交易 ID 列在对账单上，而流水中没有该交易 ID"),
    (r"^your own (?P<kind>\w+)(?: \(of hold (?P<hold>.+?)\))? was posted without a reference: .*$",
     "贵方的{kind}{hold}记账时未带参考号：其明细以交易 ID 列在对账单上，而流水中没有该交易 ID"),
]]


def problem_text(code: str, detail: str | None, lang: str, extra: dict | None = None) -> str:
    """The sentence a page shows first for a refusal: the detail in English; in Chinese, the
    translation of the detail's known form, else the code's general sentence."""
    if lang != "zh":
        return detail or GENERAL.get(code, REFUSED)[0]
    errors = (extra or {}).get("errors")
    if code == "validation_failed" and errors:
        return "；".join(_field_error(e) for e in errors) + "。"
    for form_code, pattern, zh in FORMS:
        found = form_code == code and pattern.match(detail or "")
        if found:
            return zh.format(**{k: v for k, v in (extra or {}).items() if isinstance(v, (str, int))}
                             | {k: v or "" for k, v in found.groupdict().items()})
    return GENERAL.get(code, REFUSED)[1]


def _field_error(error: dict) -> str:
    field = ".".join(str(part) for part in tuple(error.get("loc", ()))[1:]) or "?"
    form = FIELD_ERRORS.get(error.get("type", ""), "{field} 无效")
    try:
        return form.format(field=field, **(error.get("ctx") or {}))
    except (KeyError, IndexError):
        return f"{field} 无效"


def reason_text(reason: str, lang: str) -> str:
    """A reconciliation break's reason in the page's language (as given when no translation fits)."""
    if lang != "zh":
        return reason
    for pattern, zh in REASONS:
        found = pattern.match(reason or "")
        if found:
            values = found.groupdict()
            if "kind" in values:
                values["kind"] = translate("kind." + values["kind"], lang)
            if "hold" in values:
                values["hold"] = f"（冻结 {values['hold']}）" if values["hold"] else ""
            return zh.format(**values)
    return reason
