-- question: Who uses Access Anywhere, from which computer and client IP, how often and how long?
-- param: site str *
-- param: since date 1970-01-01
-- param: until date 2999-12-31
-- example: webex-exporter query access_anywhere_usage
SELECT site, user_name, computer_name, client_ip,
       count(*) AS sessions,
       sum(duration) AS minutes,
       min(start_time) AS first_session,
       max(start_time) AS last_session
FROM access_anywhere
WHERE ($site = '*' OR site = $site)
  AND start_time >= CAST($since AS TIMESTAMPTZ)
  AND start_time < CAST($until AS TIMESTAMPTZ)
GROUP BY ALL
ORDER BY sessions DESC, minutes DESC, user_name;
