"""tracking_sync: move the tracking tables from the source PostgreSQL to Redshift through S3.

One module per stage, in the order data flows:

    tables   the column list and Redshift types of each table (the one source of truth)
    config   settings read at run time (bucket, prefix, staging dir, part size)
    params   validation of the DAG's trigger params
    export   source rows -> compressed CSV parts on the staging dir
    staging  parts -> S3 under a run-scoped prefix, plus the COPY manifest
    load     COPY options, staging table names, and the one-transaction publish

Every function here runs without Airflow (plain values in, plain values out);
the DAG's tasks are thin wrappers around them.
"""
