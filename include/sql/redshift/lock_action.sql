-- Take the target table's lock first in the publish transaction: a second publish of the
-- same target (an overlapping run, a second deployment, a manual CLI run) waits until
-- this one commits, instead of aborting with a serializable isolation violation or
-- interleaving. Params: schema (identifier).
lock {{ schema }}.action;
