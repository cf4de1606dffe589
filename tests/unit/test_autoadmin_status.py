"""The auto-admin section of `ddb status`."""

from types import SimpleNamespace

from deploy.admin import admin_lines, admin_status


def test_status_lines_show_work_under_way_and_history() -> None:
    admin = {"lease_holder": "aa-1", "repairs": [{"partition": 3, "old": "sn-a1", "new": "sn-a2"}],
             "splits": [{"partition": 4, "mid": "99", "left": 7, "right": 8}],
             "history": [{"kind": "split", "reason": "heat", "partition": 2, "old": "", "new": "p5 p6",
                          "state": "finished", "at": 1.0}]}
    text = "\n".join(admin_lines(admin))
    assert "aa-1" in text and "p3 sn-a1 -> sn-a2" in text and "p4 at 99 -> p7 p8" in text
    assert "split (heat) p2" in text and "finished" in text
    assert admin_lines({}) == ["auto-admin: no control-plane leader answered"]


def test_the_section_comes_from_the_control_plane_leader() -> None:
    follower = SimpleNamespace(role="control", name="cp-a", detail={"cp_leader": "cp-b", "admin": {"x": 1}})
    leader = SimpleNamespace(role="control", name="cp-b", detail={"cp_leader": "cp-b", "admin": {"x": 2}})
    assert admin_status([follower, leader]) == {"x": 2}
    assert admin_status([follower]) == {}
