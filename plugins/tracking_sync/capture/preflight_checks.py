"""The checks of preflight (tracking_sync.capture.preflight), one per thing capture needs, each
adding Findings: one line naming the setting, its value, the problem and the fix on
PostgreSQL, Amazon RDS and Aurora PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracking_sync.capture.errors import BOOTSTRAP
from tracking_sync.capture.slot import SOURCE_SCHEMA, publishes_action, slot_status
from tracking_sync.core.tables import ACTION

_RESTART = "and restart the server"
_IN_PARAMETER_GROUP = "in the DB parameter group"
_IN_CLUSTER_PARAMETER_GROUP = "in the DB cluster parameter group"
_PARAMETER_GROUP = f"{_IN_PARAMETER_GROUP}, then reboot the instance"
_CLUSTER_PARAMETER_GROUP = f"{_IN_CLUSTER_PARAMETER_GROUP}, then reboot the writer instance"
_ID = "id"


@dataclass(frozen=True)
class Finding:
    setting: str
    value: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.setting} = {self.value}: {self.problem}. Fix: {self.fix}"


def _fix(postgres: str, rds: str, aurora: str) -> str:
    return f"PostgreSQL: {postgres}; RDS: {rds}; Aurora: {aurora}"


def check_wal_level(settings: dict, problems: list[Finding]) -> None:
    wal_level = settings["wal_level"][0]
    if wal_level == "logical":
        return
    if "rds.logical_replication" in settings:
        setting, value = "rds.logical_replication", settings["rds.logical_replication"][0]
    else:
        setting, value = "wal_level", wal_level
    problems.append(
        Finding(
            setting,
            value,
            f"logical decoding needs wal_level = logical, and it is {wal_level}",
            _fix(
                f"set wal_level = logical in postgresql.conf (ALTER SYSTEM SET wal_level = logical) {_RESTART}",
                f"set rds.logical_replication = 1 {_PARAMETER_GROUP}",
                f"set rds.logical_replication = 1 {_CLUSTER_PARAMETER_GROUP}",
            ),
        )
    )


def check_role(row: tuple, problems: list[Finding]) -> None:
    name, superuser, replication, rds_replication = row
    if superuser or replication or rds_replication:
        return
    value = "no REPLICATION" + (", not a member of rds_replication" if rds_replication is False else "")
    problems.append(
        Finding(
            f"role {name}",
            value,
            "reading a replication slot needs the REPLICATION attribute (rds_replication on RDS/Aurora)",
            _fix(
                f"ALTER ROLE {name} WITH REPLICATION (as a superuser)",
                f"GRANT rds_replication TO {name} (as the master user)",
                f"GRANT rds_replication TO {name} (as the master user)",
            ),
        )
    )


def check_publication(rows: list[tuple], publication: str, problems: list[Finding]) -> None:
    create = f"CREATE PUBLICATION {publication} FOR TABLE {SOURCE_SCHEMA}.{ACTION.name}"
    same_everywhere = _fix(create, create, create)
    if not rows:
        problems.append(
            Finding(
                f"publication {publication}",
                "missing",
                "pgoutput sends the changes of the tables a publication names, and there is none; "
                f"the bootstrap creates it ({BOOTSTRAP})",
                same_everywhere,
            )
        )
        return
    published = [row[-1] for row in rows if publishes_action(row[-1])]
    if not published:
        add = f"ALTER PUBLICATION {publication} ADD TABLE {SOURCE_SCHEMA}.{ACTION.name}"
        problems.append(
            Finding(
                f"publication {publication}",
                "without action",
                "it does not publish the source's action table, so no change of it reaches the slot",
                _fix(add, add, add),
            )
        )
        return
    pubinsert, pubupdate, pubdelete, pubtruncate, _ = rows[0]
    operations = {"insert": pubinsert, "update": pubupdate, "delete": pubdelete, "truncate": pubtruncate}
    missing = [name for name, published_op in operations.items() if not published_op]
    if missing:
        alter = f"ALTER PUBLICATION {publication} SET (publish = 'insert, update, delete, truncate')"
        problems.append(
            Finding(
                f"publication {publication} publish",
                ", ".join(name for name, published_op in operations.items() if published_op) or "nothing",
                f"it does not publish {', '.join(missing)}: those changes would never reach the target",
                _fix(alter, alter, alter),
            )
        )
    table = published[0]
    columns = table.get("attnames")
    if columns is not None and set(ACTION.column_names) - set(columns):
        reset = f"ALTER PUBLICATION {publication} SET TABLE {SOURCE_SCHEMA}.{ACTION.name}"
        problems.append(
            Finding(
                f"publication {publication} column list",
                ", ".join(columns),
                f"it leaves out {', '.join(sorted(set(ACTION.column_names) - set(columns)))}",
                _fix(reset, reset, reset),
            )
        )
    if table.get("rowfilter"):
        reset = f"ALTER PUBLICATION {publication} SET TABLE {SOURCE_SCHEMA}.{ACTION.name}"
        problems.append(
            Finding(
                f"publication {publication} row filter",
                table["rowfilter"],
                "rows outside the filter would never reach the target",
                _fix(reset, reset, reset),
            )
        )


_IDENTITY_NAMES = {"d": "DEFAULT", "n": "NOTHING", "f": "FULL", "i": "USING INDEX"}


def check_identity(row: tuple | None, problems: list[Finding]) -> None:
    table = f"{SOURCE_SCHEMA}.{ACTION.name}"
    if row is None:
        problems.append(
            Finding(
                f"table {table}",
                "missing",
                "the source has no action table",
                "point the source connection at the tracking database",
            )
        )
        return
    identity, primary_key, identity_index = row
    add_key = f"ALTER TABLE {table} ADD PRIMARY KEY ({_ID})"
    use_default = f"ALTER TABLE {table} REPLICA IDENTITY DEFAULT"
    if identity == "n":
        fix = use_default + ("" if primary_key else f" (after {add_key})")
        problems.append(
            Finding(
                f"{table} replica identity",
                "NOTHING",
                "deletes carry no key (and with action in a publication, UPDATE and DELETE fail on the source)",
                _fix(fix, fix, fix),
            )
        )
    elif identity == "d" and not primary_key:
        problems.append(
            Finding(
                f"{table} replica identity",
                "DEFAULT without a primary key",
                "DEFAULT logs the primary key, and there is none: deletes carry no key",
                _fix(add_key, add_key, add_key),
            )
        )
    elif identity == "i" and _ID not in (identity_index or []):
        problems.append(
            Finding(
                f"{table} replica identity",
                f"USING INDEX ({', '.join(identity_index or [])})",
                f"the identity index does not include {_ID}: a delete would not say which row went",
                _fix(use_default, use_default, use_default),
            )
        )
    if primary_key != [_ID]:
        problems.append(
            Finding(
                f"{table} primary key",
                f"({', '.join(primary_key)})" if primary_key else "none",
                f"the target applies changes by {_ID}, which must identify a row",
                _fix(add_key, add_key, add_key),
            )
        )


def check_wal_keep_size(settings: dict, warnings: list[Finding]) -> None:
    value = settings.get("max_slot_wal_keep_size", ("-1", None))[0]
    if value == "-1":
        keep = "max_slot_wal_keep_size = <a few days of WAL, e.g. 100GB>"
        warnings.append(
            Finding(
                "max_slot_wal_keep_size",
                "-1 (unlimited)",
                "a slot that stops being read (capture paused, DAG off) keeps all WAL from its "
                "position on until the source's disk is full",
                _fix(
                    f"ALTER SYSTEM SET {keep}; SELECT pg_reload_conf()",
                    f"set {keep} {_IN_PARAMETER_GROUP} (dynamic: no reboot)",
                    f"set {keep} {_IN_CLUSTER_PARAMETER_GROUP} (dynamic: no reboot)",
                ),
            )
        )


def check_slot(
    connection: Any, slot: str | None, settings: dict, problems: list[Finding], warnings: list[Finding]
) -> None:
    if slot is None:
        used = int(settings["replication slots in use"][0])
        limit = int(settings["max_replication_slots"][0])
        if used >= limit:
            raise_to = f"max_replication_slots = {limit + 1}"
            problems.append(
                Finding(
                    "max_replication_slots",
                    str(limit),
                    f"all {limit} replication slots are in use: the bootstrap cannot create the capture's slot",
                    _fix(
                        f"drop a slot no longer used, or ALTER SYSTEM SET {raise_to} {_RESTART}",
                        f"drop a slot no longer used, or set {raise_to} {_PARAMETER_GROUP}",
                        f"drop a slot no longer used, or set {raise_to} {_CLUSTER_PARAMETER_GROUP}",
                    ),
                )
            )
        return
    status = slot_status(connection, slot)
    recreate = f"SELECT pg_drop_replication_slot('{slot}'), then {BOOTSTRAP}"
    if status is None:
        problems.append(
            Finding(
                f"replication slot {slot}",
                "missing",
                "the changes since the last run cannot be read",
                _fix(BOOTSTRAP, BOOTSTRAP, BOOTSTRAP),
            )
        )
    elif status.is_lost:
        problems.append(
            Finding(
                f"replication slot {slot} wal_status",
                "lost",
                "the source removed WAL the slot still needed (it fell behind by more than "
                "max_slot_wal_keep_size): its changes are gone",
                _fix(recreate, recreate, recreate),
            )
        )
    elif status.wal_status == "unreserved":
        warnings.append(
            Finding(
                f"replication slot {slot} wal_status",
                "unreserved",
                "the slot holds more WAL than max_slot_wal_keep_size: the next checkpoint may invalidate it",
                _fix(
                    "run the capture now, or raise max_slot_wal_keep_size",
                    f"run the capture now, or raise max_slot_wal_keep_size {_IN_PARAMETER_GROUP}",
                    f"run the capture now, or raise max_slot_wal_keep_size {_IN_CLUSTER_PARAMETER_GROUP}",
                ),
            )
        )
