-- Forget the reloads the applied LSN has passed: every change their snapshots saw was
-- committed before their LSN, so no batch from here on holds one. A full refresh forgets
-- them all (its snapshot saw everything theirs did). Params: schema (identifier), all
-- (a full refresh); %(applied_lsn)s bound by the driver.
delete from {{ schema }}.capture_reload_ids
using {{ schema }}.capture_reloads
where capture_reload_ids.reload_id = capture_reloads.reload_id
{%- if not all %}
  and capture_reloads.reload_lsn <= %(applied_lsn)s
{%- endif %};

delete from {{ schema }}.capture_reload_xip
using {{ schema }}.capture_reloads
where capture_reload_xip.reload_id = capture_reloads.reload_id
{%- if not all %}
  and capture_reloads.reload_lsn <= %(applied_lsn)s
{%- endif %};

delete from {{ schema }}.capture_reloads
{%- if not all %}
where reload_lsn <= %(applied_lsn)s
{%- endif %};
