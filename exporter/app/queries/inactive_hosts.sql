-- question: Which hosts (licences) have not hosted a meeting for N days? (hosts seen in any history)
-- param: site str *
-- param: days int 30
-- param: as_of timestamp 2999-12-31T00:00:00+00:00
-- example: webex-exporter query inactive_hosts --param days=60
WITH last_seen AS (
    SELECT site, coalesce(host_webex_id, lower(host_email)) AS host_webex_id,  -- REST rows: the email
           max(meeting_start_time) AS last_meeting
    FROM meeting_usage
    WHERE ($site = '*' OR site = $site) AND coalesce(host_webex_id, host_email) IS NOT NULL
    GROUP BY ALL
),
reference AS (
    -- "now" is the newest meeting we hold unless as_of is given: history is always a bit late
    SELECT least(CAST($as_of AS TIMESTAMPTZ), (SELECT max(last_meeting) FROM last_seen)) AS now
)
SELECT l.site, l.host_webex_id, l.last_meeting,
       date_diff('day', l.last_meeting, r.now) AS days_inactive
FROM last_seen l, reference r
WHERE l.last_meeting < r.now - to_days($days)
ORDER BY days_inactive DESC, l.host_webex_id;
