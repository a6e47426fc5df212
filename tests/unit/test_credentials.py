"""Airflow connections become fsspec storage options."""

from __future__ import annotations

from model_steps.airflow.connections import storage_options


def test_an_aws_connection_maps_to_s3fs_options_with_its_endpoint() -> None:
    extra = '{"endpoint_url": "http://minio:9000", "region_name": "eu-west-1"}'
    assert storage_options("aws", "AKIA", "secret", extra) == {
        "key": "AKIA",
        "secret": "secret",
        "client_kwargs": {"endpoint_url": "http://minio:9000", "region_name": "eu-west-1"},
    }


def test_an_aws_connection_without_keys_leaves_the_default_credential_chain() -> None:
    assert storage_options("aws", None, None, "") == {}


def test_other_connections_pass_their_extra_as_fsspec_options() -> None:
    assert storage_options("google_cloud_platform", None, None, {"token": "cloud"}) == {
        "token": "cloud"
    }
