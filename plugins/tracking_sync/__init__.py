"""tracking_sync: move the tracking tables from the source PostgreSQL to Redshift through S3.

One module per stage, in the order data flows:

    names        the names everything shares (DAG id, connection ids, XCom key, identifiers)
    tables       the column list and Redshift types of each table (the one source of truth)
    config       settings read at run time (bucket, prefix, staging area, part size,
                 retention, default partitions)
    params       the trigger params and their checks
    plan         the run plan: what one run moves and checks, the input of every task
    tasks        the Airflow tasks: thin wrappers that open connections and call a stage
    connections  connections to the three systems, from Airflow connections
    partitions   a full refresh cut into id ranges of about equal rows (source statistics)
    staging_area where the export leaves parts for the upload: file:// folder or s3:// prefix
    export       source rows (one partition) -> compressed CSV parts in the staging area
    layout       where a run's parts live, in the staging area and in S3
    staging      staged parts -> S3 under a run-scoped prefix (upload or server-side copy),
                 plus ONE COPY manifest of every partition's parts; retention
    schema       the target schema, tables and the run's staging table (DDL from include/sql)
    operators    the provider's S3ToRedshiftOperator with the load's error report
    load         COPY options and the one-transaction publish (lock, carry moved rows)
    validate     the parity checks on both engines (parity, streams, compare, report,
                 diagnosis, placed_rows)
    failures     which failures retry; notifications: the on-call line and notifier
    exceptions   every error the pipeline raises on purpose

Every stage function runs without Airflow (plain values and open connections in, plain
values out); the DAG's tasks are thin wrappers around them.
"""
