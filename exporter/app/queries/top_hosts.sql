-- question: Which hosts held the most meetings (and minutes) in the period?
-- param: site str *
-- param: since date 1970-01-01
-- param: until date 2999-12-31
-- param: limit int 10
-- example: webex-exporter query top_hosts --param limit=5
SELECT
    site,
    coalesce(host_webex_id, lower(host_email)) AS host_webex_id,  -- REST rows: the host's email
    any_value(host_name) AS host_name,
    count(*) AS meetings,
    sum(duration) AS meeting_minutes,
    sum(total_participants) AS participants
FROM meeting_usage
WHERE ($site = '*' OR site = $site)
  AND meeting_start_time >= CAST($since AS TIMESTAMPTZ)
  AND meeting_start_time < CAST($until AS TIMESTAMPTZ)
GROUP BY ALL
ORDER BY meetings DESC, meeting_minutes DESC, host_webex_id
LIMIT $limit;
