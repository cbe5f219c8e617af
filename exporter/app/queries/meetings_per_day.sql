-- question: How many meetings and participants were there each day?
-- param: site str *
-- param: since date 1970-01-01
-- param: until date 2999-12-31
-- example: webex-exporter query meetings_per_day --param site=demo --format csv
SELECT
    CAST(meeting_start_time AS DATE) AS day,
    count(*) AS meetings,
    coalesce(sum(total_participants), 0) AS participants,
    coalesce(sum(duration), 0) AS meeting_minutes
FROM meeting_usage
WHERE ($site = '*' OR site = $site)
  AND meeting_start_time >= CAST($since AS TIMESTAMPTZ)
  AND meeting_start_time < CAST($until AS TIMESTAMPTZ)
GROUP BY ALL
ORDER BY day;
