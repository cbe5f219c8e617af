"""The whole exporter with its lake on object storage, configured as a user would
(``warehouse.root = "s3://..."``), against a real S3-compatible server (moto) on loopback."""

from __future__ import annotations

import dataclasses

import pytest
from test_pipeline import assert_equal_to_ground_truth, run
from test_warehouse_s3 import bucket, s3_endpoint  # noqa: F401  (fixtures)

pytest.importorskip("fsspec", reason="fsspec is needed to read an S3 lake through DuckDB without httpfs")


def test_export_to_an_s3_lake_equals_the_ground_truth_and_reruns_change_nothing(
    simulator, make_settings, s3_endpoint, bucket, tmp_path  # noqa: F811
):
    from conftest import exporter_settings_dict

    raw = exporter_settings_dict(simulator.url, str(tmp_path / "unused"))
    raw["warehouse"] = {"root": f"s3://{bucket}/webex", "catalog": str(tmp_path / "catalog" / "webex.duckdb"),
                        "s3_endpoint_url": s3_endpoint, "s3_region": "us-east-1"}
    settings = make_settings(simulator, data=raw)
    settings = dataclasses.replace(settings, sites=(dataclasses.replace(
        settings.sites[0], datasets=("meeting_usage", "meeting_attendees", "access_anywhere")),))
    assert run(settings, simulator).exit_code == 0
    for dataset in ("meeting_usage", "meeting_attendees", "access_anywhere"):
        assert_equal_to_ground_truth(settings, simulator, dataset)
    assert run(settings, simulator, backfill=True).exit_code == 0
    for dataset in ("meeting_usage", "meeting_attendees", "access_anywhere"):
        assert_equal_to_ground_truth(settings, simulator, dataset)
