"""docs/api.md is generated from the OpenAPI schema and must match it; the roles it shows
are the ones the auth matrix tests."""

from __future__ import annotations

from swarmvar.service.apidoc import render, route_roles
from swarmvar.service.app import create_app

from .conftest import ROOT
from .test_auth import ROLES


def test_api_page_matches_the_schema() -> None:
    page = (ROOT / "docs" / "api.md").read_text()
    assert page == render(create_app()), (
        "docs/api.md is out of date: run `python -m swarmvar.service.apidoc > docs/api.md`")


def test_documented_roles_are_the_tested_ones() -> None:
    roles = {k: v for k, v in route_roles().items() if v != "none"}
    assert roles == ROLES


def test_operations_page_covers_the_operator_topics() -> None:
    page = (ROOT / "docs" / "operations.md").read_text().lower()
    for topic in ("swarmvar serve", "swarmvar keys create", "--certfile", "/metrics",
                  "prometheus_multiproc_dir", "/dashboard", "postgresql://", "kubectl apply",
                  "kubernetes-validate"):
        assert topic in page, topic
