"""The patch registry (sandbox/patches.py): apply, list, undo; one owner per moto method."""

from __future__ import annotations

import json
import urllib.request

import pytest

from sandbox.patches import PatchConflict, Registry


class Backend:
    def create(self, name: str) -> str:
        return f"created {name}"


class Child(Backend):
    pass


def test_patch_returns_the_original_and_undo_restores_it():
    registry = Registry()
    original_create = Backend.create
    replaced = registry.patch(Backend, "create", lambda self, name: "patched " + original_create(self, name), owner="a")
    assert replaced is original_create
    assert Backend().create("x") == "patched created x"
    assert [(p.owner, p.name) for p in registry.applied()] == [("a", f"{__name__}.Backend.create")]
    registry.undo()
    assert Backend.create is original_create
    assert registry.applied() == []


def test_a_second_owner_is_refused():
    registry = Registry()
    registry.patch(Backend, "create", lambda self, name: name, owner="rds_global_clusters")
    try:
        with pytest.raises(PatchConflict, match="already patched by rds_global_clusters; aurora_postgres may not"):
            registry.patch(Backend, "create", lambda self, name: name, owner="aurora_postgres")
        with pytest.raises(PatchConflict):  # the same owner twice is a double wrap: refused too
            registry.patch(Backend, "create", lambda self, name: name, owner="rds_global_clusters")
    finally:
        registry.undo()
    assert Backend().create("x") == "created x"


def test_undo_by_owner_and_inherited_or_new_attributes():
    registry = Registry()
    registry.patch(Child, "create", lambda self, name: "child", owner="a")  # inherited: undo deletes it
    registry.patch(Backend, "describe", lambda self: "new", owner="b")  # moto lacks it: a new operation
    assert Child().create("x") == "child" and Backend().describe() == "new"
    assert [p.owner for p in registry.undo(owner="a")] == ["a"]
    assert "create" not in vars(Child) and Child().create("x") == "created x"
    assert [p.owner for p in registry.applied()] == ["b"]
    registry.undo()
    assert not hasattr(Backend, "describe")


def test_wraps_passes_the_original_first():
    registry = Registry()

    @registry.wraps(Backend, "create", owner="a")
    def create(original, self, name):
        return original(self, name).upper()

    try:
        assert Backend().create("x") == "CREATED X"
        assert Backend.create.__name__ == "create"
    finally:
        registry.undo()
    assert Backend().create("x") == "created x"


def test_mapping_items():
    registry = Registry()
    table = {"nat": "nat-gateway"}
    registry.patch_item(table, "nat", "natgateway", where="moto.ec2.utils.EC2_PREFIX_TO_RESOURCE", owner="a")
    registry.patch_item(table, "new", 1, where="t", owner="a")
    assert table == {"nat": "natgateway", "new": 1}
    assert registry.applied()[0].name == "moto.ec2.utils.EC2_PREFIX_TO_RESOURCE['nat']"
    with pytest.raises(PatchConflict):
        registry.patch_item(table, "nat", "x", where="t", owner="b")
    registry.undo()
    assert table == {"nat": "nat-gateway"}


def test_the_sandbox_lists_its_patches_each_with_one_owner(sandbox):
    with urllib.request.urlopen(f"{sandbox.endpoint}/_sandbox/patches", timeout=10) as resp:  # noqa: S310 - loopback
        listed = json.load(resp)
    names = [entry["patch"] for entry in listed]
    assert len(names) == len(set(names))
    owners = {entry["patch"]: entry["owner"] for entry in listed}
    # RDSBackend's global-cluster methods: services/rds/patches.py owns them and calls the Aurora engine.
    for method in ("create_global_cluster", "delete_global_cluster", "remove_from_global_cluster", "delete_db_cluster"):
        assert owners[f"moto.rds.models.RDSBackend.{method}"] == "sandbox.services.rds.patches"
    assert owners["moto.rds.models.RDSBackend.create_db_cluster"] == "sandbox.services.rds.provider"
