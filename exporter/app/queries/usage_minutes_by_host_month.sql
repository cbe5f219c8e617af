-- question: How many meeting minutes did each host use per month (and in how many meetings)?
-- param: site str *
-- param: since date 1970-01-01
-- param: until date 2999-12-31
-- example: webex-exporter query usage_minutes_by_host_month --param since=2026-09-01
SELECT
    strftime(date_trunc('month', meeting_start_time), '%Y-%m') AS month,
    site,
    coalesce(host_webex_id, lower(host_email)) AS host_webex_id,  -- REST rows: the host's email
    count(*) AS meetings,
    sum(duration) AS meeting_minutes,
    sum(total_people_minutes) AS people_minutes
FROM meeting_usage
WHERE ($site = '*' OR site = $site)
  AND meeting_start_time >= CAST($since AS TIMESTAMPTZ)
  AND meeting_start_time < CAST($until AS TIMESTAMPTZ)
GROUP BY ALL
ORDER BY month, meeting_minutes DESC, host_webex_id;
