"""Names the DAG, the tasks and the tools around them share: defined here and nowhere else."""

from __future__ import annotations

import re

DAG_ID = "postgres_to_redshift"

# Airflow connection ids: configure the connections, not the code.
SOURCE_CONN_ID = "postgres_source"
REDSHIFT_CONN_ID = "redshift_default"
AWS_CONN_ID = "aws_default"

# Where the validate task puts its report (XCom key), for on-call and the notifier.
REPORT_XCOM_KEY = "validation_report"

# Where plan_run puts the run plan (XCom key) that every task takes; its return value is the
# id ranges export_action is mapped over (Airflow maps over a task's return value only).
PLAN_XCOM_KEY = "plan"

# A plain Redshift identifier: schema names are written into SQL unquoted, so only these
# pass. Lower case only, because Redshift folds unquoted names to lower case anyway.
IDENTIFIER_PATTERN = r"[a-z_][a-z0-9_]*"
IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
MAX_IDENTIFIER_BYTES = 127
