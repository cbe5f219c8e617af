-- question: What was the largest number of meetings running at the same time, per day?
-- param: site str *
-- param: since date 1970-01-01
-- param: until date 2999-12-31
-- example: webex-exporter query peak_concurrent_meetings --param since=2026-11-01
WITH edges AS (
    SELECT site, meeting_start_time AS moment, 1 AS delta FROM meeting_usage
    WHERE meeting_start_time IS NOT NULL AND meeting_end_time IS NOT NULL
      AND ($site = '*' OR site = $site)
      AND meeting_start_time >= CAST($since AS TIMESTAMPTZ) AND meeting_start_time < CAST($until AS TIMESTAMPTZ)
    UNION ALL
    SELECT site, meeting_end_time AS moment, -1 AS delta FROM meeting_usage
    WHERE meeting_start_time IS NOT NULL AND meeting_end_time IS NOT NULL
      AND ($site = '*' OR site = $site)
      AND meeting_start_time >= CAST($since AS TIMESTAMPTZ) AND meeting_start_time < CAST($until AS TIMESTAMPTZ)
),
running AS (
    -- ends sort before starts at the same instant: back-to-back meetings do not overlap
    SELECT site, moment, sum(delta) OVER (PARTITION BY site ORDER BY moment, delta ROWS UNBOUNDED PRECEDING) AS concurrent
    FROM edges
)
SELECT site, CAST(moment AS DATE) AS day, max(concurrent) AS peak_concurrent_meetings
FROM running
GROUP BY ALL
ORDER BY site, day;
