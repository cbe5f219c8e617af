-- question: How fresh is each dataset: cursor, lag, last run and outcome, failed windows, rows held?
-- param: site str *
-- example: webex-exporter query data_freshness --format json
SELECT
    s.site,
    s.dataset,
    s.cursor,
    round(date_diff('minute', s.cursor, (SELECT published_at FROM catalog_info)) / 60.0, 1) AS lag_hours,
    s.last_run_at,
    s.last_outcome,
    (SELECT count(*) FROM failed_windows f WHERE f.site = s.site AND f.dataset = s.dataset) AS failed_windows,
    coalesce((SELECT sum(m.rows) FROM manifest m WHERE m.site = s.site AND m.dataset = s.dataset), 0) AS rows_landed
FROM sync_state s
WHERE ($site = '*' OR s.site = $site)
ORDER BY s.site, s.dataset;
