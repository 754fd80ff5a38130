"""All ORM models in one package so that relationships never create import cycles."""

from shared.models.base import Base
from shared.models.ledger import Account, Cycle, Entry, LotConsumption, Lot, NetworkSetting, ObligationLine, Transfer
from shared.models.members import LinkToken, Member, MemberErasure, MemberLink, MemberUnlink
from shared.models.partners import Contract, FloatTopup, Partner, PartnerLimits, Termination
from shared.models.holds import Hold, HoldLot
from shared.models.ops import Alert, IdempotencyRecord, OutstandingPoints
from shared.models.keys import NetworkSigningKey, PartnerKey, RequestNonce
from shared.models.settlement import CyclePosition, Holiday, Settlement, SettlementPayment, SettlementRun
from shared.models.rules import CampaignAward, CampaignTotal, EarnRuleSet
from shared.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from shared.models.programme import ActivityAward, IssuanceCounter, Referral, ReferralBonus
from shared.models.programme import ExpiryReminder, MemberMerge, MemberStatusHistory, MemberTierHistory
from shared.models.access import AuditEntry, LoginFailure, PendingAction, StaffSession, StaffUser
from shared.models.transparency import Checkpoint, LedgerLeaf, LedgerNode, NetworkOrigin, SealedCycle
from shared.models.reports import (
    ReportCycleCampaigns, ReportCycleEarns, ReportCycleLines, ReportCycleMembers, ReportCyclePoints, ReportMonthMembers,
    ReportRollup,
)

__all__ = [
    "Base", "Account", "Cycle", "Entry", "LotConsumption", "Lot", "NetworkSetting", "ObligationLine", "Transfer",
    "LinkToken", "Member", "MemberErasure", "MemberLink", "MemberUnlink", "Contract", "Partner", "Hold", "HoldLot", "IdempotencyRecord", "OutstandingPoints", "NetworkSigningKey", "PartnerKey", "RequestNonce",
    "CyclePosition", "Holiday", "Settlement", "SettlementPayment", "SettlementRun", "CampaignAward", "CampaignTotal", "EarnRuleSet", "Alert", "FloatTopup", "PartnerLimits", "Termination",
    "WebhookEndpoint", "WebhookDelivery", "WebhookAttempt",
    "ActivityAward", "IssuanceCounter", "Referral", "ReferralBonus",
    "ExpiryReminder", "MemberMerge", "MemberStatusHistory", "MemberTierHistory",
    "Checkpoint", "LedgerLeaf", "LedgerNode", "NetworkOrigin", "SealedCycle",
    "AuditEntry", "LoginFailure", "PendingAction", "StaffSession", "StaffUser",
    "ReportRollup", "ReportCyclePoints", "ReportCycleEarns", "ReportCycleMembers", "ReportCycleLines",
    "ReportCycleCampaigns", "ReportMonthMembers",
]
