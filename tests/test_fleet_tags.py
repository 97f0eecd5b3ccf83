"""Sharding by target tags: targets carry key=value tags, `opscore deploy --shard-tag KEY` puts
each value's targets in their own shard (work queue), a retagged target moves to its new
value's shard, and a shard left without targets loses its deployments on the next deploy."""

from __future__ import annotations

import json
import uuid

import pytest

from ops_core import api
from ops_core.errors import InvalidInput

from .helpers import run_cli


@pytest.fixture
def tagged(repo, target_db):
    """Four names for one server: two env=prod, one env=test, one without the tag."""
    for n in ("tp1", "tp2", "tt1", "tn1"):
        api.add_target(n, target_db)
    api.tag_target("tp1", {"env": "prod", "region": "eu"})
    api.tag_target("tp2", {"env": "prod"})
    api.tag_target("tt1", {"env": "test"})
    return target_db


def test_targets_land_in_the_shard_of_their_tag_and_move_when_retagged(tagged):
    assert api.get_target("tp1").tags == {"env": "prod", "region": "eu"}
    assert api.shard_targets(by_tag="env") == {
        "env-prod": ["tp1", "tp2"],
        "env-test": ["tt1"],
        "env-untagged": ["tn1"],
    }
    assert api.shard_targets(by_tag="region") == {
        "region-eu": ["tp1"],
        "region-untagged": ["tn1", "tp2", "tt1"],
    }
    # retag: tp2 moves to env-test, the others stay where they were
    api.tag_target("tp2", {"env": "test"})
    # and a removed tag: tn1 is untagged already; tp1 loses region only
    api.tag_target("tp1", remove=["region"])
    assert api.get_target("tp1").tags == {"env": "prod"}
    assert api.shard_targets(by_tag="env") == {
        "env-prod": ["tp1"],
        "env-test": ["tp2", "tt1"],
        "env-untagged": ["tn1"],
    }


def test_tag_bad_input_changes_nothing(tagged):
    for kw, words in (
        ({"tags": {"1env": "x"}}, "not a tag key"),
        ({"tags": {"env": "has space"}}, "not a value"),
        ({"tags": {"env": "untagged"}}, "not a value"),
        ({"tags": {"env": "x"}, "remove": ["env"]}, "both set and removed"),
        ({}, "No tag"),
    ):
        with pytest.raises(InvalidInput, match=words):
            api.tag_target("tp1", **kw)
    assert api.get_target("tp1").tags == {"env": "prod", "region": "eu"}
    with pytest.raises(InvalidInput, match="not both"):
        api.shard_targets(2, by_tag="env")
    with pytest.raises(InvalidInput, match="not a tag key"):
        api.shard_targets(by_tag="env-x")


@pytest.mark.slow  # two CLI processes
def test_cli_tags_and_plans_shards_by_tag(tagged):
    r = run_cli("target", "tag", "tn1", "env=dev", "team=dba", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"target": "tn1", "tags": {"env": "dev", "team": "dba"}}
    r = run_cli("deploy", "--pool", "p", "--shard-tag", "env", "--check")
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert "env-prod (queue env-prod): 2 target(s): tp1, tp2" in out
    assert "env-dev (queue env-dev): 1 target(s): tn1" in out
    assert "ash-fleet/ash-env-test" in out


def test_deploy_by_tag_moves_a_retagged_target_and_removes_the_emptied_shard(
    prefect_harness, tagged
):
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from flows.serve import deploy

    pool, prefix = f"tags-{uuid.uuid4().hex[:6]}", f"g{uuid.uuid4().hex[:4]}-"
    first = deploy(pool, by_tag="env", prefix=prefix)
    assert {s.shard: s.targets for s in first} == {
        "env-prod": ["tp1", "tp2"],
        "env-test": ["tt1"],
        "env-untagged": ["tn1"],
    }
    # tt1 leaves env-test for env-prod: env-test has no target left
    api.tag_target("tt1", {"env": "prod"})
    second = deploy(pool, by_tag="env", prefix=prefix)
    kept = {s.shard: s.targets for s in second if not s.removed}
    assert kept == {"env-prod": ["tp1", "tp2", "tt1"], "env-untagged": ["tn1"]}
    (gone,) = [s for s in second if s.removed]
    assert gone.shard == "env-test" and gone.targets == []
    assert sorted(gone.deployments) == [
        f"ash-fleet/{prefix}ash-env-test",
        f"snapshot/{prefix}snapshot-env-test",
    ]
    with get_client(sync_client=True) as client:
        for name in gone.deployments:
            with pytest.raises(ObjectNotFound):
                client.read_deployment_by_name(name)
        dep = client.read_deployment_by_name(f"ash-fleet/{prefix}ash-env-prod")
        assert dep.parameters["targets"] == ["tp1", "tp2", "tt1"]
        assert (dep.work_pool_name, dep.work_queue_name) == (pool, "env-prod")
