-- Add the captured table to an existing publication that does not publish it.
-- Params: publication, table (identifiers from tracking_sync.capture.slot and tables).
alter publication {{ publication }} add table {{ table }}
