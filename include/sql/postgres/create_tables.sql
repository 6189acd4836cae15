-- The source tracking schema of the SQL-learning platform (reference definition).
-- Runs on the source PostgreSQL; idempotent. No params.
create table if not exists action_type (
    id        int          primary key,
    code      varchar(100) not null,
    name      varchar(100) not null,
    is_async  boolean      not null
);

create table if not exists action (
    id                   int          primary key,
    user_profile_id      int          not null,
    session_id           varchar(100) not null,
    action_type_id       int          not null,
    action_time          timestamp    not null,
    course_id            int          null,
    exercise_id          int          null,
    is_exercise_checked  boolean      null,
    is_async             boolean      not null,
    query                text         null
);

-- Incremental exports select one day of action_time.
create index if not exists action_action_time_idx on action (action_time);

-- Scoped validation (include/sql/parity/) reads the whole history of the users
-- active in the interval: this index makes that a semi-join of those users to
-- their own rows, not a scan of the table (the action_time index above serves
-- the incremental export and finds the interval's users). session_id is
-- included so the per-user session totals never read the heap (index-only):
-- without it PostgreSQL's default costs (random_page_cost 4) prefer a seq scan
-- (measured: 0.49 s vs 0.11 s for one day at 2M rows).
create index if not exists action_user_profile_id_action_time_idx
    on action (user_profile_id, action_time) include (session_id);
