"""Each playbook reads only the facts it needs: counted on the clients, per endpoint."""

from __future__ import annotations

from support.demo import make_demo


async def test_license_renewal_reads_project_info_and_doors_only() -> None:
    demo = make_demo()
    try:
        before = dict(demo.agent.clients.stats()["cloud"].by_endpoint)
        await demo.run("license-renewal")
        cloud = demo.agent.clients.stats()["cloud"].by_endpoint
        made = {k: n - before.get(k, 0) for k, n in cloud.items() if n - before.get(k, 0)}
        projects = {c.cloud_project_id for c in demo.world.centers.values() if c.cloud_project_id}
        made.pop("token", None)
        # two requests per project (one page of doors each in the demo), and where a door is
        # due its renewal and the re-read that verifies it; no groups, holidays or people
        assert set(made) <= {
            "get_project_info",
            "get_door_list",
            "renew_door_license",
            "get_door_detail",
        }, made
        assert made["get_project_info"] == len(projects) > 0
        assert made["get_door_list"] == len(projects)
        assert made.get("get_door_detail", 0) == made.get("renew_door_license", 0)
    finally:
        await demo.aclose()
