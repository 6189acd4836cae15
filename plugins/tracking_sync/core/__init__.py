"""The core every stage shares: names, tables, settings, params, the run plan, errors, SQL rendering,
key layout, S3 helpers and the scratch area. Imports nothing from the stages."""
