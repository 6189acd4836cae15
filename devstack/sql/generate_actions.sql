-- Fills the source `action` table with deterministic demo data, inside PostgreSQL.
-- Params (psycopg2 pyformat): rows, seed, users, first_user_id, last_user_id,
-- period_start, period_days.
-- Determinism comes from hashint8extended(i, seed) instead of random(), so the
-- result does not depend on the plan, parallel workers or row order.
create function pg_temp.rnd(i bigint, salt int, seed bigint) returns float8
    language sql immutable parallel safe
    return (hashint8extended(i, seed * 1000 + salt) & 9007199254740991)::float8
           / 9007199254740992.0;

create temp table demo_user on commit drop as
with candidates as (
    select id
    from generate_series(%(first_user_id)s::int, %(last_user_id)s::int) as id
    order by pg_temp.rnd(id, 1, %(seed)s), id
    limit %(users)s
)
select row_number() over (order by id) as n,
       id,
       -- the user's typical session length: from a few minutes to about half an hour
       3 + 27 * pg_temp.rnd(id, 2, %(seed)s) as pace_minutes
from candidates;

create temp table demo_session on commit drop as
with numbered as (
    select s,
           -- every user gets a session first, then users are drawn at random
           case when s <= %(users)s then s
                else 1 + floor(pg_temp.rnd(s, 3, %(seed)s) * %(users)s)::bigint
           end as user_n,
           2 + floor(pg_temp.rnd(s, 5, %(seed)s) * 13)::int as actions
    from generate_series(1, ceil(%(rows)s / 7.0)::bigint + 16) as s
)
select n.s,
       u.id as user_profile_id,
       md5(%(seed)s::text || '/' || n.s)::uuid::text as session_id,
       %(period_start)s::timestamp
           + make_interval(secs => pg_temp.rnd(n.s, 4, %(seed)s) * %(period_days)s * 86400)
           as started_at,
       u.pace_minutes * 60 * (0.6 + 0.8 * pg_temp.rnd(n.s, 6, %(seed)s)) as duration_secs,
       1 + floor(pg_temp.rnd(n.s, 7, %(seed)s) * 40)::int as course_id,
       n.actions,
       sum(n.actions) over (order by n.s) - n.actions as first_id_before
from numbered as n
join demo_user as u on u.n = n.user_n;

insert into action (
    id, user_profile_id, session_id, action_type_id, action_time, course_id,
    exercise_id, is_exercise_checked, is_async, query
)
with steps as (
    select s.*,
           j,
           s.first_id_before + j as id,
           case when j = 1 then 1
                when j = s.actions then
                    case when pg_temp.rnd(s.s * 16 + j, 8, %(seed)s) < 0.8 then 2 else 3 end
                else (array[4, 5, 6, 7, 7, 8, 8, 8, 9, 10])
                     [1 + floor(pg_temp.rnd(s.s * 16 + j, 9, %(seed)s) * 10)::int]
           end as action_type_id,
           pg_temp.rnd(s.s * 16 + j, 10, %(seed)s) as r
    from demo_session as s
    cross join lateral generate_series(1, s.actions) as j
)
select st.id,
       st.user_profile_id,
       st.session_id,
       st.action_type_id,
       st.started_at + make_interval(
           secs => st.duration_secs
                   * least(1.0, (st.j - 1 + case when st.j in (1, st.actions) then 0 else st.r end)
                                / (st.actions - 1))
       ) as action_time,
       case when st.action_type_id in (1, 2, 3) then null else st.course_id end,
       case when st.action_type_id >= 7 then 1 + floor(st.r * 500)::int end,
       case when st.action_type_id >= 8 then st.r < 0.6
            when st.action_type_id = 7 and st.r < 0.5 then false
       end,
       at.is_async,
       case when st.action_type_id not in (8, 9, 10) then null
            when st.r < 0.002 then
                -- a few very long submissions, multi-byte included
                repeat(E'select ''привет, мир'' as greeting union all\n', 450) || 'select ''ok'';'
            else (array[
                'SELECT * FROM employees;',
                E'select name, salary\nfrom employees\nwhere salary > 1000\norder by salary desc;',
                'select * from customers where city = ''Москва'';',
                'SELECT count(*) FROM orders WHERE note LIKE ''%%"urgent"%%'';',
                'insert into t (a, b) values (''O''''Brien'', ''café'');',
                E'select ''C:\\temp\\new'' as path, E''\\n'' as esc;',
                'select * from users where name = ''東京'' -- 🙂',
                'SELEC * FRM tabel',
                E'select\tid,\tname\r\nfrom t;',
                'select ''\N'' as null_marker;',
                '',
                '   ',
                'with t as (select 1 as a, 2 as b) select a, b, a + b as "sum, total" from t;'
            ])[1 + floor(pg_temp.rnd(st.id, 11, %(seed)s) * 13)::int]
       end
from steps as st
join action_type as at on at.id = st.action_type_id
where st.id <= %(rows)s;
