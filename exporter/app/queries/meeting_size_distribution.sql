-- question: How big are meetings (participants per meeting, in buckets)?
-- param: site str *
-- param: since date 1970-01-01
-- param: until date 2999-12-31
-- example: webex-exporter query meeting_size_distribution
SELECT
    CASE
        WHEN total_participants IS NULL THEN 'unknown'
        WHEN total_participants <= 2 THEN '01: 1-2'
        WHEN total_participants <= 5 THEN '02: 3-5'
        WHEN total_participants <= 10 THEN '03: 6-10'
        WHEN total_participants <= 25 THEN '04: 11-25'
        WHEN total_participants <= 100 THEN '05: 26-100'
        ELSE '06: over 100'
    END AS size_bucket,
    count(*) AS meetings,
    round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS percent
FROM meeting_usage
WHERE ($site = '*' OR site = $site)
  AND meeting_start_time >= CAST($since AS TIMESTAMPTZ)
  AND meeting_start_time < CAST($until AS TIMESTAMPTZ)
GROUP BY size_bucket
ORDER BY size_bucket;
