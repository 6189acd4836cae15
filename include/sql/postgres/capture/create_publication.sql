-- Create the capture's publication of one table: inserts, updates, deletes and truncates
-- (the default; a truncate must reach the capture so that it can stop the pipeline).
-- Params: publication, table (identifiers from tracking_sync.capture.slot and tables).
create publication {{ publication }} for table {{ table }}
