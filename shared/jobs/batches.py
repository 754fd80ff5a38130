"""What one batch of a job did, for a batch that reads what is due before it locks it.

Such a batch (the lot-expiry and hold-timeout jobs) reads the members owning the next due work,
then waits for their locks. A spend by one of them that held its lock meanwhile may have done that
work already (a spend expires its member's due lots first and releases its lapsed holds): the batch
then does nothing, yet work may remain beyond what it read. ``read`` tells the job's loop
(``Network.until_done``) that it read some, so that the run goes on until a batch reads none.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Batch:
    done: int  # what it did: points expired, holds released
    read: frozenset[str] = frozenset()  # the due work it read, by id (members, holds); none: nothing was due
