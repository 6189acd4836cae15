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
