from pathlib import Path

import pytest

from tracking_sync.core.errors import MissingSetting
from tracking_sync.core.settings import MIB, Settings


def test_settings_come_from_the_environment():
    settings = Settings.from_env(
        {
            "TRACKING_SYNC_BUCKET": "b",
            "TRACKING_SYNC_PREFIX": "/p/",
            "TRACKING_SYNC_STAGING_DIR": "/shared/stage",
            "TRACKING_SYNC_PART_MB": "0.5",
        }
    )
    assert settings == Settings("b", "p", Path("/shared/stage"), MIB // 2)


def test_a_missing_bucket_says_which_variable_to_set():
    with pytest.raises(MissingSetting, match="TRACKING_SYNC_BUCKET is not set"):
        Settings.from_env({})


def test_a_bad_part_size_is_explained():
    with pytest.raises(MissingSetting, match="TRACKING_SYNC_PART_MB='big'"):
        Settings.from_env({"TRACKING_SYNC_BUCKET": "b", "TRACKING_SYNC_PART_MB": "big"})


def test_retention_is_whole_days_and_a_bad_value_says_what_it_is():
    assert Settings.from_env({"TRACKING_SYNC_BUCKET": "b"}).retention_days == 14
    assert (
        Settings.from_env({"TRACKING_SYNC_BUCKET": "b", "TRACKING_SYNC_RETENTION_DAYS": "3"}).retention_days
        == 3
    )
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(MissingSetting, match="how long an interval's files stay in S3"):
            Settings.from_env({"TRACKING_SYNC_BUCKET": "b", "TRACKING_SYNC_RETENTION_DAYS": bad})


def test_the_staging_area_is_the_url_or_the_older_folder_setting():
    settings = Settings.from_env({"TRACKING_SYNC_BUCKET": "b", "TRACKING_SYNC_STAGING_DIR": "/shared/stage"})
    assert settings.scratch.is_local and settings.scratch.url == "file:///shared/stage"
    settings = Settings.from_env(
        {
            "TRACKING_SYNC_BUCKET": "b",
            "TRACKING_SYNC_STAGING_DIR": "/shared/stage",
            "TRACKING_SYNC_STAGING_URL": "s3://stage-bucket/runs",
        }
    )
    assert (settings.scratch.bucket, settings.scratch.root) == ("stage-bucket", "runs/")
    with pytest.raises(MissingSetting, match="TRACKING_SYNC_STAGING_URL='ftp://x/y': the scheme 'ftp'"):
        Settings.from_env({"TRACKING_SYNC_BUCKET": "b", "TRACKING_SYNC_STAGING_URL": "ftp://x/y"})


def test_the_default_partitions_are_a_whole_number_up_to_the_cap():
    assert Settings.from_env({"TRACKING_SYNC_BUCKET": "b"}).partitions == 1
    assert Settings.from_env({"TRACKING_SYNC_BUCKET": "b", "TRACKING_SYNC_PARTITIONS": "8"}).partitions == 8
    for bad in ("0", "65", "four", "-2"):
        with pytest.raises(
            MissingSetting, match=f"TRACKING_SYNC_PARTITIONS='{bad}' is not a whole number from 1 to 64"
        ):
            Settings.from_env({"TRACKING_SYNC_BUCKET": "b", "TRACKING_SYNC_PARTITIONS": bad})


def test_the_s3_client_is_built_once_per_process_and_connection(monkeypatch):
    """S3Hook builds a new boto3 session per client (0.1-0.3 s): the tasks of one process
    share one client per connection; an edited connection gets a client of its own."""
    import json

    from tracking_sync.connections import s3_client

    def aws(endpoint: str, secret: str) -> str:
        extra = {"endpoint_url": endpoint, "region_name": "us-east-1"}
        return json.dumps({"conn_type": "aws", "login": "key", "password": secret, "extra": extra})

    monkeypatch.setenv("AIRFLOW_CONN_CLIENT_CACHE", aws("http://127.0.0.1:9", "one"))
    first = s3_client("client_cache")
    assert s3_client("client_cache") is first
    assert first.meta.endpoint_url == "http://127.0.0.1:9"
    monkeypatch.setenv("AIRFLOW_CONN_CLIENT_CACHE", aws("http://127.0.0.1:9", "two"))
    rotated = s3_client("client_cache")
    assert rotated is not first and rotated.meta.region_name == "us-east-1"
    monkeypatch.setenv("AIRFLOW_CONN_CLIENT_CACHE", aws("http://127.0.0.1:10", "two"))
    assert s3_client("client_cache").meta.endpoint_url == "http://127.0.0.1:10"
