-- question: How do people join meetings (client agent mix)?
-- param: site str *
-- param: since date 1970-01-01
-- param: until date 2999-12-31
-- example: webex-exporter query join_client_mix
SELECT
    coalesce(nullif(client_agent, ''), 'unknown') AS client_agent,
    count(*) AS joins,
    round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS percent
FROM meeting_attendees
WHERE ($site = '*' OR site = $site)
  AND join_time >= CAST($since AS TIMESTAMPTZ)
  AND join_time < CAST($until AS TIMESTAMPTZ)
GROUP BY ALL
ORDER BY joins DESC, client_agent;
