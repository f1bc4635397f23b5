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


def rows(*ids, served):
    """The server's sealed releases, oldest first, as the release agent lists them."""
    return [{"id": i, "current": i == served} for i in ids]


def test_rollback_goes_to_the_release_before_the_served_one():
    assert records.rollback_target(rows("r1", "r2", "r3", served="r3"), None, []) == "r2"


def test_rolling_back_twice_goes_back_twice():
    assert records.rollback_target(rows("r1", "r2", "r3", served="r2"), None, []) == "r1"


def test_the_server_decides_not_the_history():
    # the history says r3 serves (a killed run never wrote its entry); the server serves r4
    entries = [entry("1", release="r3")]
    assert records.rollback_target(rows("r2", "r3", "r4", served="r4"), None, entries) == "r3"


def test_rollback_to_a_release_or_a_runs_release_and_mistakes():
    entries = [entry("1", release="r1"), entry("2", release="r2"), entry("3", release="r3")]
    served = rows("r1", "r2", "r3", served="r3")
    assert records.rollback_target(served, "r1", entries) == "r1"
    assert records.rollback_target(served, "2", entries) == "r2"
    with pytest.raises(UserError, match="nonsense is neither a release on the server nor a run"):
        records.rollback_target(served, "nonsense", entries)
    with pytest.raises(UserError, match="r0 is neither"):   # pruned
        records.rollback_target(served, "r0", entries)
    with pytest.raises(UserError, match="is what the server serves now"):
        records.rollback_target(served, "3", entries)
    with pytest.raises(UserError, match="no release older than the served one"):
        records.rollback_target(rows("r1", served="r1"), None, entries)


def test_the_backup_to_restore_is_the_first_taken_after_the_target():
    entries = [entry("1"), entry("2", backup="b2"), entry("3", backup="b3")]
    assert records.backup_before(entries, "r1") == "b2"
    assert records.backup_before(entries, "r3") == ""
    assert records.backup_before(entries, "unknown") == ""
    # served again by a rollback later: still the backup taken after its deploy
    again = entries + [entry("4", "rollback", release="r1")]
    assert records.backup_before(again, "r1") == "b2"


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


def test_the_standby_is_where_a_plain_rollback_goes():
    assert records.release_before(rows("r1", "r2", "r3", served="r3")) == "r2"
    assert records.release_before(rows("r1", "r2", "r3", served="r2")) == "r1"
    assert records.release_before(rows("r1", served="r1")) is None        # the first release has none
