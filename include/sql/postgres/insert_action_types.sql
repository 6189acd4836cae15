-- The action_type dictionary of the tracking system. Idempotent. No params.
insert into action_type (id, code, name, is_async) values
    (1,  'login',                               'Login',                                false),
    (2,  'logout',                              'Logout',                               false),
    (3,  'logout_session_expired',              'Logout: session expired',              true),
    (4,  'course_start',                        'Course start',                         false),
    (5,  'course_finish',                       'Course finish',                        false),
    (6,  'course_page_open',                    'Course page open',                     false),
    (7,  'exercise_page_open',                  'Exercise page open',                   false),
    (8,  'execute_exercise_code',               'Execute exercise code',                false),
    (9,  'successful_exercise_code_execution',  'Successful exercise code execution',   true),
    (10, 'failed_exercise_code_execution',      'Failed exercise code execution',       true)
on conflict (id) do nothing;
