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
