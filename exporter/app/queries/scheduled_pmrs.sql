-- question: Which Personal Meeting Room meetings are scheduled, by host?
-- param: site str *
-- param: since date 1970-01-01
-- param: until date 2999-12-31
-- example: webex-exporter query scheduled_pmrs --param since=2026-11-01
SELECT site, host_webex_id, conf_id, conf_name, start_time, duration, status, is_recurring
FROM scheduled_sessions
WHERE is_scheduled_pmr
  AND ($site = '*' OR site = $site)
  AND start_time >= CAST($since AS TIMESTAMPTZ)
  AND start_time < CAST($until AS TIMESTAMPTZ)
ORDER BY start_time, host_webex_id, conf_id;
