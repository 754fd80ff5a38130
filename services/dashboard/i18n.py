"""Dashboard labels in English and Simplified Chinese. Report labels come from shared.reports.labels."""

from __future__ import annotations

from shared.reports.labels import LABELS as REPORT_LABELS

LANGUAGES = {"en": "English", "zh": "简体中文"}

LABELS: dict[str, tuple[str, str]] = {
    "app": ("Pointsnet dashboard", "Pointsnet 管理后台"),
    "nav.overview": ("Overview", "概览"),
    "nav.partners": ("Partners", "合作伙伴"),
    "nav.members": ("Members", "会员"),
    "nav.ledger": ("Ledger", "账本"),
    "nav.settlement": ("Settlement", "结算"),
    "nav.reports": ("Reports", "报表"),
    "nav.approvals": ("Approvals", "审批"),
    "nav.audit": ("Audit log", "审计日志"),
    "nav.users": ("Users", "用户"),
    "nav.my_partner": ("My partner", "我的商户"),
    "sign_in": ("Sign in", "登录"),
    "sign_out": ("Sign out", "退出"),
    "email": ("E-mail", "电子邮箱"),
    "password": ("Password", "密码"),
    "signed_in_as": ("Signed in as", "当前用户"),
    "role.operator": ("operator", "运营"),
    "role.finance": ("finance", "财务"),
    "role.partner_viewer": ("partner viewer", "商户查看"),
    "login.failed": ("Wrong e-mail or password.", "邮箱或密码错误。"),
    "error": ("Error", "错误"),
    "error.forbidden": ("Your role does not allow this.", "您的角色无权执行此操作。"),
    "error.csrf": ("The form was stale or not sent by this dashboard. Reload the page and try again.",
                   "表单已过期或来源无效，请刷新页面后重试。"),
    "back": ("Back", "返回"),
    "previous": ("Previous", "上一页"),
    "next": ("Next", "下一页"),
    "page.of": ("{first}–{last} of {total}", "第 {first}–{last} 条，共 {total} 条"),
    "nothing": ("Nothing here yet.", "暂无数据。"),
    "filter": ("Filter", "筛选"),
    "search": ("Search", "搜索"),
    "save": ("Save", "保存"),
    "submit": ("Submit", "提交"),
    "approve": ("Approve", "批准"),
    "reject": ("Reject", "拒绝"),
    "status": ("Status", "状态"),
    "action": ("Action", "操作"),
    "target": ("Target", "对象"),
    "detail": ("Detail", "详情"),
    "when": ("When", "时间"),
    "who": ("Who", "用户"),
    "requested_by": ("Requested by", "申请人"),
    "decided_by": ("Decided by", "审批人"),
    "outcome": ("Outcome", "结果"),
    "pending": ("pending", "待审批"),
    "approved": ("approved", "已批准"),
    "rejected": ("rejected", "已拒绝"),
    "failed": ("failed", "失败"),
    "approvals.waiting": ("Waiting for a second operator", "等待另一位运营人员审批"),
    "approvals.decided": ("Decided", "已处理"),
    "approvals.requested": ("Requested: a second operator must approve it (approvals).",
                            "已提交申请：需要另一位运营人员批准（见审批）。"),
    "done": ("Done.", "已完成。"),
    # overview
    "overview.title": ("Network overview", "网络概览"),
    "overview.today": ("Today", "今日"),
    "overview.trailing": ("Last 30 days", "近 30 天"),
    "overview.last_settlement": ("Last settlement", "最近结算"),
    "overview.none_settled": ("no cycle settled yet", "尚无结算"),
    "overview.alerts": ("Open alerts", "未处理告警"),
    "kpi.issued": ("Points issued", "发放积分"),
    "kpi.redeemed": ("Points redeemed", "兑换积分"),
    "kpi.expired": ("Points expired", "过期积分"),
    "kpi.liability": ("Outstanding liability (points)", "未兑付积分负债"),
    "kpi.active_members": ("Active members", "活跃会员"),
    "kpi.breakage_rate": ("Breakage rate", "积分过期率"),
    "chart.daily": ("Points per day", "每日积分"),
    "users.title": ("Dashboard users", "后台用户"),
    "users.sessions": ("Sign out everywhere", "在所有设备退出"),
    "users.partner": ("Partner", "商户"),
    "language": ("Language", "语言"),
}


def translate(key: str, lang: str, **values) -> str:
    pair = LABELS.get(key) or REPORT_LABELS.get(key) or (key, key)
    text = pair[1] if lang == "zh" else pair[0]
    return text.format(**values) if values else text


def pick_language(*candidates: str | None) -> str:
    for candidate in candidates:
        if candidate in LANGUAGES:
            return candidate
    return "en"
