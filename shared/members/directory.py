"""One member's record and personal data as operators see it: masked by default, in full on request.

Finding a member by phone or e-mail goes through the blind index
(shared.members.enrolment.find_member); this module only ever decrypts the one member asked for.
"""

from __future__ import annotations

from sqlalchemy import select

from shared.db.database import Tx
from shared.errors import UnknownMember
from shared.members.privacy import Keyring, mask_email, mask_phone
from shared.models import Member, MemberErasure

FIELDS = ("phone", "email", "name")


def member_record(tx: Tx, member_id: str) -> dict:
    """Status and dates of any member (also an erased or merged one); refuses an unknown id."""
    row = tx.session.execute(select(Member.id, Member.status, Member.created_at, Member.erased_at, Member.merged_into,
                                    Member.enrolled_by).where(Member.id == member_id)).first()
    if row is None:
        raise UnknownMember(f"no member {member_id}")
    erasure = tx.session.execute(select(MemberErasure.reason, MemberErasure.points_forfeited)
                                 .where(MemberErasure.member_id == member_id)).first()
    return {"member_id": row.id, "status": row.status, "created_at": row.created_at.isoformat(),
            "erased_at": row.erased_at.isoformat() if row.erased_at else None, "merged_into": row.merged_into,
            "enrolled_by": row.enrolled_by,
            "erasure": {"reason": erasure.reason, "points_forfeited": erasure.points_forfeited} if erasure else None}


def personal_data(tx: Tx, keyring: Keyring, member_id: str) -> dict[str, str | None]:
    """The member's phone, e-mail and name, decrypted (only for an operator's audited request)."""
    row = tx.session.execute(select(Member.phone_ct, Member.email_ct, Member.name_ct)
                             .where(Member.id == member_id)).first()
    if row is None:
        raise UnknownMember(f"no member {member_id}")
    tokens = dict(zip(FIELDS, (row.phone_ct, row.email_ct, row.name_ct)))
    return {field: keyring.decrypt(field, member_id, token) if token else None for field, token in tokens.items()}


def masked_personal_data(tx: Tx, keyring: Keyring, member_id: str) -> dict[str, str | None]:
    """The same, masked: enough to recognise a member on the phone, not to contact them."""
    plain = personal_data(tx, keyring, member_id)
    return {"phone": mask_phone(plain["phone"]) if plain["phone"] else None,
            "email": mask_email(plain["email"]) if plain["email"] else None,
            "name": (plain["name"][:1] + "***") if plain["name"] else None}
