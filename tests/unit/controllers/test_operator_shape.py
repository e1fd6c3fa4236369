"""The operator's shape in kopf: watch handlers and one daemon per PowerSite, nothing per
job. (It reads kopf's registry internals: the shape is what the benchmarks rely on.)"""

from __future__ import annotations

from suandian.config import Settings
from suandian.controllers import NoEssence, build
from suandian.k8s.client import KubeApi


def parts():  # type: ignore[no-untyped-def]
    return build(settings=Settings(), api=KubeApi.for_server("http://127.0.0.1:1"))


def test_no_change_handlers_so_kopf_need_not_keep_an_essence_of_every_object() -> None:
    built = parts()
    assert built.registry._changing.get_all_handlers() == []
    assert isinstance(built.settings.persistence.diffbase_storage, NoEssence)


def test_jobs_and_pods_get_no_daemon_each_only_sites_and_grid_events_do() -> None:
    """Daemons for the few (sites, the grid's requests), never the many (jobs, pods)."""
    spawning = parts().registry._spawning.get_all_handlers()
    assert sorted(h.selector.any_name for h in spawning) == ["gridevents", "powersites"]


def test_the_peering_lifetime_setting_reaches_kopf() -> None:
    assert parts().settings.peering.lifetime == 60
    quick = build(settings=Settings.from_env({"SUANDIAN_PEERING_LIFETIME": "15"}),
                  api=KubeApi.for_server("http://127.0.0.1:1"))
    assert quick.settings.peering.lifetime == 15


def test_initial_lists_are_paged() -> None:
    assert parts().settings.watching.chunk_size == 500


def test_child_jobs_are_mirrored_where_the_operator_may_read_them() -> None:
    from suandian.controllers.cluster import job_paths

    assert job_paths(()) == [("/apis/batch/v1/jobs", None)]  # all namespaces
    assert job_paths(("ml", "batch")) == [  # named: each (the chart grants them so)
        ("/apis/batch/v1/namespaces/ml/jobs", "ml"),
        ("/apis/batch/v1/namespaces/batch/jobs", "batch")]
    assert job_paths(("ml", "batch-*")) == [("/apis/batch/v1/jobs", None)]  # a glob


def test_a_namespace_feed_listing_again_drops_only_its_own_children() -> None:
    from datetime import UTC, datetime

    from suandian.controllers.clock import LoopClock
    from suandian.controllers.cluster import job_feed
    from suandian.controllers.context import Context

    ctx = Context(settings=Settings(), clock=LoopClock(datetime(2026, 6, 21, tzinfo=UTC)),
                  api=None)  # type: ignore[arg-type]
    woken: list[str] = []

    def child(owner: str, ns: str) -> dict:  # type: ignore[type-arg]
        return {"metadata": {"name": owner, "namespace": ns,
                             "annotations": {"suandian.io/computejob-uid": owner}}}

    apply_a, reset_a = job_feed(ctx, woken.append, "a")
    apply_b, _ = job_feed(ctx, woken.append, "b")
    apply_a("ADDED", child("a1", "a"))
    apply_b("ADDED", child("b1", "b"))
    reset_a([])  # namespace a listed again: a1 is gone, b1 is not a's to judge
    assert set(ctx.cluster.child_jobs) == {"b1"} and woken[-1] == "a1"
