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


def test_jobs_and_pods_get_no_daemon_each_only_sites_do() -> None:
    spawning = parts().registry._spawning.get_all_handlers()
    assert [h.selector.any_name for h in spawning] == ["powersites"]


def test_initial_lists_are_paged() -> None:
    assert parts().settings.watching.chunk_size == 500
