"""Load: the target schema, COPY into the run's Redshift staging table, and the one-transaction
publish into the target."""
