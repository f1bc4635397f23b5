"""The history and the lock are data: entries in, rollback targets and messages out."""
from datetime import datetime, timezone

import pytest

from tasks.core import deploy_records as records
from tasks.core.errors import UserError


def entry(id, action="deploy", result="ok", release=None, commit=None, backup=""):
    return {"id": id, "action": action, "result": result, "backup": backup,
            "after": {"release": release or f"r{id}", "commit": commit or f"c{id}"}}


def test_history_lines_cut_short_are_skipped():
    text = '{"id": "1", "action": "setup"}\n{"id": "2", "act\n\n[1, 2]\n{"id": "3"}\n'
    assert [e["id"] for e in records.parse_history(text)] == ["1", "3"]


def test_rollback_goes_to_the_deploy_before_the_served_one():
    entries = [entry("1", "setup"), entry("2"), entry("3")]
    current, target = records.rollback_target(entries, None)
    assert current["id"] == "3" and target["id"] == "2"


def test_rolling_back_twice_goes_back_twice():
    first = entry("4", "rollback", release="r2", commit="c2")
    entries = [entry("1", "setup"), entry("2"), entry("3"), first]
    assert records.rollback_target(entries, None)[1]["id"] == "1"


def test_failed_and_rolled_back_deploys_are_never_targets():
    entries = [entry("1"), entry("2", result="failed"), entry("3", result="rolled back", release="r1", commit="c1"),
               entry("4")]
    assert records.rollback_target(entries, None)[1]["id"] == "1"


def test_rollback_to_an_id_or_a_release_and_mistakes():
    entries = [entry("1"), entry("2"), entry("3")]
    assert records.rollback_target(entries, "1")[1]["id"] == "1"
    assert records.rollback_target(entries, "r2")[1]["id"] == "2"
    with pytest.raises(UserError, match="nonsense is neither a deploy id nor a release"):
        records.rollback_target(entries, "nonsense")
    with pytest.raises(UserError, match="is what the server runs now"):
        records.rollback_target(entries, "3")
    with pytest.raises(UserError, match="no completed deploy"):
        records.rollback_target([], None)
    with pytest.raises(UserError, match="nothing to roll back to"):
        records.rollback_target([entry("1", "setup")], None)


def test_a_commit_in_the_history_that_is_not_a_commit_id_is_refused():
    entries = [entry("1", commit="--hard"), entry("2"), entry("3", commit="c3;reboot")]
    for to in ("1", "3"):
        with pytest.raises(UserError, match=f"{to} in the deploy history names '(--hard|c3;reboot)', not a commit id"):
            records.rollback_target(entries + [entry("4")], to)


def test_the_backup_to_restore_is_the_first_taken_after_the_target():
    entries = [entry("1"), entry("2", backup="b2"), entry("3", backup="b3")]
    assert records.backup_before(entries, entries[0]) == "b2"
    assert records.backup_before(entries, entries[2]) == ""


def test_the_lock_owner_says_who_from_where_since_when_and_where_it_is():
    owner = records.lock_owner("deploy", "alice", "laptop", 42, datetime(2026, 11, 28, 23, 10, 5, tzinfo=timezone.utc))
    assert records.describe_owner({**owner, "step": "upload"}) == \
        "deploy by alice from laptop (pid 42) since 2026-11-28 23:10:05 UTC, at step upload"
    assert "unknown" in records.describe_owner(None)


def test_summary_and_long_lists_stay_one_line():
    steps = [records.Step("build", 6.43, "export of abc1234"), records.Step("env", 0.1),
             records.Step("restart", 31.0, failed="not healthy")]
    assert records.summary_rows(steps) == [["build", "6.4 s", "export of abc1234"], ["env", "0.1 s", "no change"],
                                           ["restart", "31.0 s", "FAILED: not healthy"]]
    assert records.listed(["a", "b"], "keys") == "keys: a, b"
    assert records.listed(list("abcde"), "keys") == "5 keys (a ... e)"
