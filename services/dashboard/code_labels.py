"""Labels for the codes the dashboard shows from stored data, in English and Simplified Chinese.

A code is looked up as ``family.code`` (``t('kind.' ~ e.kind)``); one without a label of its family
is shown as the code itself (i18n.translate), so a new kind or action is never an error.

Tiers are the operator's names (POINTSNET_TIERS): only the names of the default ladder have labels,
any other is shown as configured.
"""

from __future__ import annotations

FAMILIES = ("kind", "line", "billing", "tier", "tier_reason", "activity", "break", "action", "party")

CODE_LABELS: dict[str, tuple[str, str]] = {
    "all": ("all", "全部"),
    "page.total": ("{total} items", "共 {total} 条"),
    # ledger entry kinds (shared.models.ledger.ENTRY_KINDS)
    "kind.earn": ("earn", "积分发放"),
    "kind.bonus": ("bonus", "奖励积分"),
    "kind.burn": ("burn", "积分兑换"),
    "kind.hold": ("hold", "积分冻结"),
    "kind.capture": ("capture", "冻结扣除"),
    "kind.void": ("void", "冻结取消"),
    "kind.hold_expiry": ("hold expiry", "冻结到期释放"),
    "kind.reversal": ("reversal", "冲正"),
    "kind.expiry": ("expiry", "积分过期"),
    "kind.adjustment": ("adjustment", "人工调整"),
    # obligation line kinds (shared.models.ledger.LINE_KINDS)
    "line.issuance_fee": ("issuance fee", "发放手续费"),
    "line.prepaid_funding": ("prepaid funding", "预付资金"),
    "line.redemption": ("redemption", "兑换结算款"),
    "line.redemption_fee": ("redemption fee", "兑换手续费"),
    "line.breakage_refund": ("breakage refund", "过期返还"),
    # the default tier ladder; an operator's own tier names are shown as configured
    "tier.regular": ("regular", "普通会员"),
    "tier.silver": ("silver", "银卡会员"),
    "tier.gold": ("gold", "金卡会员"),
    "tier.platinum": ("platinum", "白金会员"),
    "tier.diamond": ("diamond", "钻石会员"),
    "tier_reason.qualified": ("qualified", "达到定级积分"),
    "tier_reason.anniversary_review": ("anniversary review", "周年评级"),
    "tier_reason.merge": ("merge", "会员合并"),
    # activity statuses (shared.models.programme.ACTIVITY_STATUSES)
    "activity.active": ("active", "活跃"),
    "activity.at_risk": ("at risk", "流失风险"),
    "activity.dormant": ("dormant", "沉睡"),
    # reconciliation breaks (shared.settlement.reconcile.Break)
    "break.missing_on_network": ("missing on the network", "网络无此记录"),
    "break.missing_on_partner": ("missing in the partner's log", "商户流水缺失"),
    "break.duplicate_on_partner": ("duplicate in the partner's log", "商户流水重复"),
    "break.points_mismatch": ("points differ", "积分不一致"),
    "break.amount_mismatch": ("amount differs", "金额不一致"),
    "break.kind_mismatch": ("operation differs", "交易类型不一致"),
    "break.unreferenced": ("no reference", "缺少参考号"),
    # the settlement party that is not a partner
    "party.network": ("the network", "积分网络"),
    # actions: maker-checker requests and audit log entries
    "action.member_adjustment": ("member points adjustment", "会员积分调整"),
    "action.member_erasure": ("member erasure", "删除会员个人数据"),
    "action.contract_change": ("contract change", "合同变更"),
    "action.partner_suspension": ("partner suspension", "暂停或恢复合作伙伴"),
    "action.settlement_paid": ("settlement paid", "结算付款登记"),
    "action.approval.requested": ("approval requested", "提交审批"),
    "action.approval.approved": ("approved", "批准"),
    "action.approval.rejected": ("rejected", "拒绝"),
    "action.approval.failed": ("approval failed", "审批执行失败"),
    "action.approval.already_applied": ("approved, already applied", "批准（此前已执行）"),
    "action.session.signed_in": ("signed in", "登录"),
    "action.session.signed_out": ("signed out", "退出"),
    "action.user.added": ("user added", "添加用户"),
    "action.user.disabled": ("user disabled", "停用用户"),
    "action.user.password_set": ("password set", "设置密码"),
    "action.user.language_set": ("language set", "设置语言"),
    "action.user.sessions_revoked": ("signed out everywhere", "在所有设备退出"),
    "action.partner.created": ("partner onboarded", "新增合作伙伴"),
    "action.partner.key_added": ("key added", "添加密钥"),
    "action.partner.key_revoked": ("key revoked", "吊销密钥"),
    "action.partner.rules_set": ("earn rules saved", "保存积分规则"),
    "action.network.rules_set": ("network rules saved", "保存全网规则"),
    "action.member.personal_data_viewed": ("personal data viewed", "查看会员个人数据"),
    "action.webhook.set": ("webhook set", "设置 Webhook"),
    "action.webhook.secret_rotated": ("webhook secret rotated", "轮换 Webhook 密钥"),
    "action.webhook.secret_shown": ("webhook secret shown", "查看 Webhook 密钥"),
    "action.webhook.disabled": ("webhook disabled", "停用 Webhook"),
    "action.webhook.replayed": ("webhook delivery replayed", "重新发送 Webhook"),
    "action.ledger.verify": ("integrity check", "完整性检查"),
    "action.settlement.verify": ("run's files verified", "校验结算文件"),
    "action.settlement.reconcile": ("partner's log reconciled", "核对商户流水"),
    "action.calendar.day_added": ("calendar day added", "添加日历日"),
    "action.calendar.day_removed": ("calendar day removed", "删除日历日"),
    "action.calendar.imported": ("calendar imported", "导入日历"),
}


def code_of(key: str) -> str | None:
    """The code of a ``family.code`` key with no label (shown as it is), or None for any other key."""
    family, _, code = key.partition(".")
    return code if code and family in FAMILIES else None
