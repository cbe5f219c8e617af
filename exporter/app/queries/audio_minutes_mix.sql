-- question: How many audio minutes went over VoIP, call-in (toll and toll-free) and call-out, per month?
-- param: site str *
-- param: since date 1970-01-01
-- param: until date 2999-12-31
-- example: webex-exporter query audio_minutes_mix
SELECT
    strftime(date_trunc('month', meeting_start_time), '%Y-%m') AS month,
    coalesce(sum(total_voip_minutes), 0) AS voip_minutes,
    coalesce(sum(total_call_in_minutes), 0) AS call_in_minutes,
    coalesce(sum(total_call_in_tollfree_minutes), 0) AS call_in_tollfree_minutes,
    coalesce(sum(total_call_out_domestic), 0) AS call_out_domestic_minutes,
    coalesce(sum(total_call_out_international), 0) AS call_out_international_minutes
FROM meeting_usage
WHERE ($site = '*' OR site = $site)
  AND meeting_start_time >= CAST($since AS TIMESTAMPTZ)
  AND meeting_start_time < CAST($until AS TIMESTAMPTZ)
GROUP BY ALL
ORDER BY month;
