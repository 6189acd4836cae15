"""Stage: the exported parts -> the run's load prefix in S3, listed in one COPY manifest."""
