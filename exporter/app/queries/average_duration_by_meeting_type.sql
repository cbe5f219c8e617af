-- question: What is the average meeting duration (minutes) by meeting type?
-- param: site str *
-- param: since date 1970-01-01
-- param: until date 2999-12-31
-- example: webex-exporter query average_duration_by_meeting_type
SELECT
    coalesce(meeting_type, 'unknown') AS meeting_type,
    count(*) AS meetings,
    round(avg(duration), 1) AS average_minutes,
    max(duration) AS longest_minutes
FROM meeting_usage
WHERE ($site = '*' OR site = $site)
  AND meeting_start_time >= CAST($since AS TIMESTAMPTZ)
  AND meeting_start_time < CAST($until AS TIMESTAMPTZ)
GROUP BY ALL
ORDER BY meetings DESC, meeting_type;
