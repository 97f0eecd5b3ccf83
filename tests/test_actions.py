"""The actions module against a real server: policy per target and feature, the journal of
every request (done / reported / refused / failed), and the restore point routed through it."""

from __future__ import annotations

import psycopg
import pytest

from ops_core import api, repository
from ops_core.errors import InvalidInput
from ops_core.targets import actions


@pytest.fixture
def tgt(repo, target_db):
    return api.add_target("act", target_db)


def test_restore_point_goes_through_the_journal(tgt, target_db):
    rp = api.create_restore_point("act", "rp_journal")
    j = api.action_journal("act")
    assert len(j) == 1
    e = j[0]
    assert (e.feature, e.mode, e.outcome) == ("restore_point", "implement", "done")
    assert "pg_create_restore_point" in e.sql and e.params == ["rp_journal"]
    assert e.requested_by == "user" and e.finished_at is not None
    # the journal's result is the restore point's real LSN
    assert e.after[0][0] == rp.lsn
    assert api.get_action(e.action_id).action_id == e.action_id


def test_report_only_and_off_change_nothing_and_are_journaled(tgt, target_db):
    api.set_action_policy("act", "restore_point", "report_only")
    with pytest.raises(Exception, match="report_only"):
        api.create_restore_point("act", "rp_reported")
    assert api.list_restore_points("act") == []
    api.set_action_policy("act", "restore_point", "off")
    with pytest.raises(actions.ActionRefused):
        api.create_restore_point("act", "rp_refused")
    assert api.list_restore_points("act") == []
    outcomes = [(e.mode, e.outcome) for e in api.action_journal("act")]
    assert outcomes == [("off", "refused"), ("report_only", "reported")]
    assert api.action_policies("act")["restore_point"] == "off"
    # the default of an autonomous feature is the safe one
    assert api.action_policies("act")["create_index"] == "report_only"


def test_analyze_records_state_before_and_after(tgt, target_db):
    with psycopg.connect(target_db, autocommit=True) as c:
        c.execute("CREATE TABLE t_an (a int)")
        c.execute("INSERT INTO t_an SELECT generate_series(1, 1000)")
    api.set_action_policy("act", "analyze", "implement")
    act = actions.analyze_table(
        "public", "t_an", why="stale statistics", evidence={"n_mod_since_analyze": 1000}
    )
    with repository.session() as r:
        res = actions.perform(r, tgt.target_id, target_db, act)
    assert res.done
    e = api.get_action(res.action_id)
    assert e.sql == 'ANALYZE "public"."t_an"'
    assert e.before[0]["last_analyze"] is None
    assert e.after[0]["last_analyze"] is not None
    assert e.evidence == {"n_mod_since_analyze": 1000}


def test_a_failing_action_is_journaled_and_raised(tgt, target_db):
    api.set_action_policy("act", "analyze", "implement")
    act = actions.analyze_table("public", "no_such_table", why="test", evidence={})
    with repository.session() as r, pytest.raises(psycopg.Error):
        actions.perform(r, tgt.target_id, target_db, act)
    e = api.action_journal("act", feature="analyze")[0]
    assert e.outcome == "failed" and "no_such_table" in e.error


def test_bad_policy_input_is_refused(tgt):
    with pytest.raises(InvalidInput, match="Unknown action feature"):
        api.set_action_policy("act", "drop_database", "implement")
    with pytest.raises(InvalidInput, match="Unknown action mode"):
        api.set_action_policy("act", "analyze", "sometimes")
    assert api.action_policies("act")["analyze"] == "report_only"


def test_cli_shows_and_sets_the_policy_and_lists_the_journal(tgt):
    import json

    from tests.helpers import invoke_cli, run_cli

    api.create_restore_point("act", "rp_cli")
    r = run_cli("actions", "policy", "act", "--feature", "vacuum", "--mode", "off", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["vacuum"] == "off"
    assert api.action_policies("act")["vacuum"] == "off"
    # one real `opscore` process, the rest in this process
    bad = invoke_cli("actions", "policy", "act", "--feature", "vacuum", "--mode", "always")
    assert bad.returncode != 0 and "Unknown action mode" in bad.stderr
    rows = json.loads(invoke_cli("actions", "list", "-t", "act", "--json").stdout)
    assert [(x["feature"], x["outcome"]) for x in rows] == [("restore_point", "done")]
    assert rows[0]["params"] == ["rp_cli"]
