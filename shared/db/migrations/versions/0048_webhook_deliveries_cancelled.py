"""webhook_deliveries: a delivery may be cancelled, never to be sent

* webhook_deliveries.status: 'pending', 'delivered', 'dead' or, new, 'cancelled': a delivery still
  pending when the member it names withdrew its consent from the partner or was erased, or when its
  partner was terminated (every event but settlement.ready), is never sent; its last_error says why.

On SQLite the CHECK is changed by rebuilding the table (batch mode). SQLite refuses to drop a table
that rows of another table refer to while the connection enforces foreign keys (the network's do, and
an upgrade runs in one transaction, where that cannot be switched off), so the attempts are set aside
in a temporary table for the rebuild and put back as they were, their ids kept. The partial index
ix_webhook_deliveries_endpoint_due (migration 0043) is built again with its WHERE.

The previous release cancelled nothing: a delivery it queued, still pending, to a partner that may no
longer hear it would be sent by this one. Each is cancelled here, its last_error saying why, by the rule a
replay and the delivery job follow (shared/webhooks/delivery.py, ``refusals``; copied below as it stands
at this revision): a message about a member (any but settlement.ready) to a terminated partner; one
naming a member (a duplicate: the member it was merged into) that is erased, but the member.erased and
the points.expired of the erasure's own forfeit; one naming a member not linked to the partner now, but
a member.unlinked, which is cancelled when the member is linked to the partner again. Pending deliveries
are few (three days of retries at most): read and judged in Python.

The downgrade deletes the cancelled deliveries and their attempts: before 0048 they have no place, and
as dead letters an operator could replay them to the partner they must not reach.

Revision ID: 0048
Revises: 0047
Create Date: 2026-12-10 15:00:00.000000
"""
import json

from alembic import op
import sqlalchemy as sa


revision = '0048'
down_revision = '0047'
branch_labels = None
depends_on = None

WITH_CANCELLED = "status IN ('pending', 'delivered', 'dead', 'cancelled')"
WITHOUT = "status IN ('pending', 'delivered', 'dead')"
ATTEMPT_COLUMNS = "id, delivery_id, attempted_at, status_code, error, duration_ms"


def _status_check(condition: str) -> None:
    name = op.f('ck_webhook_deliveries_status')
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(name, 'webhook_deliveries', type_='check')
        op.create_check_constraint(name, 'webhook_deliveries', condition)
        return
    op.execute(f"CREATE TEMP TABLE webhook_attempts_0048 AS SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts")
    op.execute("DELETE FROM webhook_attempts")
    op.drop_index('ix_webhook_deliveries_endpoint_due', table_name='webhook_deliveries')
    with op.batch_alter_table('webhook_deliveries', schema=None, recreate='always') as batch_op:
        batch_op.drop_constraint(name, type_='check')
        batch_op.create_check_constraint(name, condition)
    op.create_index('ix_webhook_deliveries_endpoint_due', 'webhook_deliveries',
                    ['endpoint_id', 'next_attempt_at', 'id'], unique=False,
                    sqlite_where=sa.text("status = 'pending'"))
    op.execute(f"INSERT INTO webhook_attempts ({ATTEMPT_COLUMNS}) SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts_0048")
    op.execute("DROP TABLE webhook_attempts_0048")


def upgrade() -> None:
    _status_check(WITH_CANCELLED)
    _cancel_unreachable()


# each reason as shared/webhooks/outbox.py and delivery.py word it at this revision
TERMINATED = "not sent: the partner was terminated"
ERASED = "not sent: the member was erased"
UNLINKED = "not sent: the member withdrew its consent from the partner"
RELINKED = "not sent: the member is linked to the partner again, so the unlink it tells of no longer holds"
CHUNK = 500


def _data(body: str) -> dict:
    try:
        data = json.loads(body).get("data") or {}
    except (ValueError, AttributeError):
        return {}
    return data if isinstance(data, dict) else {}


def _chunks(values) -> list[list]:
    values = sorted(values)
    return [values[start:start + CHUNK] for start in range(0, len(values), CHUNK)]


def _cancel_unreachable() -> None:
    bind = op.get_bind()
    pending = bind.execute(sa.text("SELECT id, partner_id, event_type, body FROM webhook_deliveries "
                                   "WHERE status = 'pending' AND event_type <> 'settlement.ready'")).all()
    if not pending:
        return
    terminated = set(bind.execute(sa.text("SELECT partner_id FROM terminations")).scalars())
    named = {}
    for row in pending:
        member_id = _data(row.body).get("member_id")
        if row.partner_id not in terminated and isinstance(member_id, str):
            named[row.id] = member_id
    members = {}  # id: (status, merged_into)
    todo = set(named.values())
    for _ in range(100):  # a duplicate's survivor, and so on
        todo -= members.keys()
        if not todo:
            break
        found = []
        for chunk in _chunks(todo):
            found += bind.execute(sa.text("SELECT id, status, merged_into FROM members WHERE id IN :ids")
                                  .bindparams(sa.bindparam("ids", expanding=True)), {"ids": chunk}).all()
        members.update((member.id, (member.status, member.merged_into)) for member in found)
        todo = {member.merged_into for member in found if member.merged_into is not None}

    def survivor(member_id: str) -> str:
        for _ in range(100):
            if member_id not in members or members[member_id][1] is None:
                break
            member_id = members[member_id][1]
        return member_id

    survivors = {delivery: survivor(member_id) for delivery, member_id in named.items()}
    links, forfeits = set(), set()
    erased = {m for m in survivors.values() if m in members and members[m][0] == "erased"}
    for chunk in _chunks(set(survivors.values())):
        links |= {(link.partner_id, link.member_id) for link in bind.execute(sa.text(
            "SELECT partner_id, member_id FROM member_links WHERE member_id IN :ids")
            .bindparams(sa.bindparam("ids", expanding=True)), {"ids": chunk})}
    for chunk in _chunks(erased):
        forfeits |= set(bind.execute(sa.text(
            "SELECT entry_id FROM member_erasures WHERE entry_id IS NOT NULL AND member_id IN :ids")
            .bindparams(sa.bindparam("ids", expanding=True)), {"ids": chunk}).scalars())
    why = {}
    for row in pending:
        if row.partner_id in terminated:
            why[row.id] = TERMINATED
            continue
        member_id = survivors.get(row.id)
        if member_id is None:
            continue
        if member_id in erased and row.event_type != "member.erased" and not (
                row.event_type == "points.expired" and _data(row.body).get("transaction_id") in forfeits):
            why[row.id] = ERASED
            continue
        linked = (row.partner_id, member_id) in links
        if row.event_type == "member.unlinked":
            if linked:
                why[row.id] = RELINKED
        elif not linked:
            why[row.id] = UNLINKED
    for reason in sorted(set(why.values())):
        for chunk in _chunks([delivery for delivery, said in why.items() if said == reason]):
            bind.execute(sa.text("UPDATE webhook_deliveries SET status = 'cancelled', claim_token = NULL, "
                                 "last_error = :why WHERE status = 'pending' AND id IN :ids")
                         .bindparams(sa.bindparam("ids", expanding=True)), {"why": reason, "ids": chunk})


def downgrade() -> None:
    op.execute("DELETE FROM webhook_attempts WHERE delivery_id IN "
               "(SELECT id FROM webhook_deliveries WHERE status = 'cancelled')")
    op.execute("DELETE FROM webhook_deliveries WHERE status = 'cancelled'")
    _status_check(WITHOUT)
