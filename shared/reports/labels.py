"""Labels in the network's locale (English or Chinese) and amounts in the network's currency."""

from __future__ import annotations

from decimal import Decimal

from shared.money import currency_exponent

LOCALES = ("en", "zh")
SYMBOLS = {"CNY": "¥", "JPY": "¥", "USD": "$", "HKD": "HK$", "EUR": "€", "GBP": "£", "SGD": "S$", "KRW": "₩"}

LABELS: dict[str, tuple[str, str]] = {
    # titles and sections
    "title.partner": ("Partner performance report", "合作伙伴业绩报告"),
    "title.network": ("Network analytics", "积分网络运营分析"),
    "period": ("Period", "报告期间"),
    "cycles": ("cycles", "个结算日"),
    "timezone": ("Time zone", "时区"),
    "currency": ("Currency", "币种"),
    "as_of": ("Liability as of", "负债截至"),
    "section.points": ("Points", "积分"),
    "section.daily": ("Points per day", "每日积分"),
    "section.liability": ("Outstanding liability", "未兑付积分负债"),
    "section.expiry": ("Expiry schedule", "到期计划"),
    "section.flows": ("Cross-partner flows", "跨商户积分流向"),
    "section.matrix": ("Flow matrix (rows: whose points; columns: where spent)", "流向矩阵（行：积分发放方；列：兑换方）"),
    "section.members": ("Members", "会员"),
    "section.money": ("Money per settled cycle", "每个已结算日的资金"),
    "section.campaigns": ("Campaign effect", "营销活动效果"),
    "section.totals": ("Totals", "合计"),
    "section.leaderboard": ("Partner leaderboard", "合作伙伴排行"),
    "section.segments": ("Tier and status mix", "等级与状态分布"),
    "segments.pending": ("Not available: member tiers are switched off in this network.",
                         "暂无数据：本网络未启用会员等级。"),
    "segments.tier": ("Tier", "等级"),
    "segments.status": ("Activity status", "活跃状态"),
    "none": ("none", "无"),
    "total": ("Total", "合计"),
    "unsettled": ("Cycles not settled yet (no money shown)", "尚未结算的日期（未列入资金）"),
    # points
    "points.issued": ("Points issued", "发放积分"),
    "points.issue_reversed": ("Issued points taken back (earn reversals)", "撤销发放的积分"),
    "points.redeemed_here": ("Points redeemed here", "本店兑换积分"),
    "points.redeemed_here_own_points": ("… of them your own points", "其中本店发放的积分"),
    "points.redeemed_here_other_partners_points": ("… of them other partners' points", "其中其他商户发放的积分"),
    "points.redeemed_here_network_points": ("… of them network-funded points", "其中网络出资的积分"),
    "points.redeemed_elsewhere": ("Your points redeemed elsewhere", "本店积分在他处兑换"),
    "points.expired": ("Your points expired or removed by adjustment (breakage)", "本店积分过期或被调整扣减（过期损耗）"),
    "points.adjusted_out": ("… of them removed by operator adjustment", "其中运营调整扣减"),
    "points.network_funded_awarded_here": ("Network-funded points awarded here", "本店发放的网络出资积分"),
    "liability.outstanding_points": ("Outstanding points", "未兑付积分"),
    # series
    "series.issued": ("issued", "发放"),
    "series.issue_reversed": ("taken back", "撤销"),
    "series.redeemed": ("redeemed", "兑换"),
    "series.redeemed_here": ("redeemed here", "本店兑换"),
    "series.redeemed_elsewhere": ("redeemed elsewhere", "他处兑换"),
    "series.expired": ("expired", "过期"),  # breakage, adjustments included (the next series shows those)
    "series.adjusted_out": ("removed by operator adjustment", "运营调整扣减"),
    "series.points": ("points", "积分"),
    "month": ("Month", "月份"),
    "month.due": ("past due, not yet expired", "已到期待处理"),
    "month.later": ("later or never", "更晚或永不过期"),
    "cycle_date": ("Cycle", "结算日"),
    # flows
    "flows.spent_elsewhere": ("Your points spent at other partners", "本店积分在其他商户的兑换"),
    "flows.spent_here": ("Other partners' points spent here", "其他商户积分在本店的兑换"),
    "partner": ("Partner", "商户"),
    "points": ("Points", "积分"),
    # members
    "members.active": ("Active members (earned, redeemed)", "活跃会员（积分或兑换）"),
    "members.new": ("New members enrolled here", "本店新入会会员"),
    "members.linked": ("Linked members (end of period)", "关联会员（期末）"),
    "members.newly_linked": ("Members linked in the period", "本期新关联会员"),
    "members.from_elsewhere": ("Members enrolled elsewhere who transacted here", "他处入会、在本店交易的会员"),
    "members.earning": ("Members with an earn", "有积分交易的会员"),
    "members.repeat_earning": ("Members with 2 or more earns", "有两次及以上积分交易的会员"),
    "members.repeat_purchase_rate": ("Repeat-purchase rate", "复购率"),
    "members.earns": ("Earns", "积分交易笔数"),
    "members.earn_points": ("Points of those earns", "这些交易的积分"),
    "members.points_per_earn": ("Points per earn", "每笔交易积分"),
    "members.earns_with_amount": ("Earns with a purchase amount", "带消费金额的交易笔数"),
    "members.purchase_amount_minor": ("Purchase amount", "消费金额"),
    "members.average_purchase_amount_minor": ("Average purchase amount", "平均消费金额"),
    # money
    "money.net_minor": ("Net (receive + / pay −)", "净额（收 + / 付 −）"),
    "money.fees_paid_minor": ("Fees paid", "支付手续费"),
    "money.reimbursements_paid_minor": ("Reimbursements paid", "支付兑换结算款"),
    "money.prepaid_funding_paid_minor": ("Prepaid funding paid", "预付资金"),
    "money.reimbursements_received_minor": ("Reimbursements received", "收到兑换结算款"),
    "money.breakage_refunds_received_minor": ("Breakage refunds received", "收到过期返还"),
    "money.payment_date": ("Payment date", "付款日"),
    "money.status": ("Status", "状态"),
    # campaigns
    "campaign": ("Campaign", "活动"),
    "campaign.window": ("Window", "期间"),
    "campaign.campaign_points": ("Campaign points", "活动积分"),
    "campaign.during": ("During", "活动期间"),
    "campaign.before": ("Same length before", "活动前同等天数"),
    "campaign.earns": ("Earns", "交易笔数"),
    "campaign.points": ("Points awarded", "发放积分"),
    "campaign.purchase_amount_minor": ("Purchase amount", "消费金额"),
    # network
    "totals.issued": ("Points issued", "发放积分"),
    "totals.issued_by_partners": ("… funded by partners", "其中商户出资"),
    "totals.issued_by_network": ("… funded by the network", "其中网络出资"),
    "totals.issue_reversed": ("Issued points taken back", "撤销发放的积分"),
    "totals.redeemed": ("Points redeemed", "兑换积分"),
    "totals.expired": ("Points expired or removed by adjustment (breakage)", "过期或被调整扣减的积分（过期损耗）"),
    "totals.adjusted_out": ("… of them removed by operator adjustment", "其中运营调整扣减"),
    "totals.breakage_rate": ("Breakage rate (breakage ÷ (redeemed + breakage))", "过期率（过期损耗 ÷（兑换 + 过期损耗））"),
    "totals.active_members": ("Active members", "活跃会员"),
    "network_revenue_minor": ("Network net revenue (settled)", "网络净收入（已结算）"),
    "leaderboard.issued": ("Issued", "发放"),
    "leaderboard.redeemed_here": ("Redeemed there", "在该店兑换"),
    "leaderboard.redeemed_elsewhere": ("Its points redeemed elsewhere", "其积分在他处兑换"),
    "leaderboard.active_members": ("Active members", "活跃会员"),
    "leaderboard.net_minor": ("Net settled", "结算净额"),
}


def label(key: str, locale: str) -> str:
    en, zh = LABELS.get(key, (key, key))
    return zh if locale == "zh" else en


def format_money(minor: int | str | None, currency: str) -> str:
    """Minor units as the network's currency, e.g. -568 CNY → "-¥5.68"."""
    if minor is None or minor == "":
        return ""
    exponent = currency_exponent(currency)
    value = Decimal(int(minor)).scaleb(-exponent)
    text = f"{abs(value):,.{exponent}f}"
    symbol = SYMBOLS.get(currency.upper())
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency.upper()}"


def format_points(points: int | None) -> str:
    return "" if points is None else f"{int(points):,}"


def format_rate(rate: str | None) -> str:
    """A share as a percentage with two places (the ratio itself is exact to 4 places)."""
    if rate is None:
        return "—"
    return f"{Decimal(rate) * 100:.2f}%"
