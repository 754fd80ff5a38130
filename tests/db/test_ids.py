"""Writer-made ids: ``new_ids`` makes ids of exactly ``new_id``'s form, all distinct."""

import re

from shared.db.types import new_id, new_ids

FORM = re.compile(r"lc_[0-9a-f]{12}[0-9a-f]{16}")


def test_ids_made_at_once_have_the_form_of_one_id_made_alone():
    ids = new_ids("lc", 10_000)
    assert len(set(ids)) == 10_000
    assert all(FORM.fullmatch(i) for i in ids)
    assert FORM.fullmatch(new_id("lc")) and len(new_id("lc")) == len(ids[0])
    assert ids[0][:15] <= new_id("lc")[:15]  # the same clock: sortable by creation
    assert new_ids("lc", 0) == []
