-- question: For training sessions and events, how many registered and how many attended?
-- param: site str *
-- param: since date 1970-01-01
-- param: until date 2999-12-31
-- example: webex-exporter query registration_to_attendance
SELECT 'training' AS kind, s.site, s.conf_id, s.conf_name, s.session_start_time AS start_time,
       s.total_registered AS registered,
       (SELECT count(*) FROM training_attendees a WHERE a.site = s.site
          AND (a.conf_id = s.conf_id OR a.meeting_id = s.meeting_id)  -- XML or REST rows
          AND upper(coalesce(a.participant_type, '')) <> 'HOST') AS attended
FROM training_sessions s
WHERE ($site = '*' OR s.site = $site)
  AND s.session_start_time >= CAST($since AS TIMESTAMPTZ) AND s.session_start_time < CAST($until AS TIMESTAMPTZ)
UNION ALL
SELECT 'event', e.site, e.conf_id, e.conf_name, e.session_start_time,
       (SELECT count(*) FROM event_attendees a WHERE a.site = e.site AND (a.conf_id = e.conf_id OR a.meeting_id = e.meeting_id)
          AND upper(coalesce(a.registered, '')) IN ('Y', 'YES', 'TRUE')),
       (SELECT count(*) FROM event_attendees a WHERE a.site = e.site AND (a.conf_id = e.conf_id OR a.meeting_id = e.meeting_id)
          AND a.duration > 0)
FROM event_sessions e
WHERE ($site = '*' OR e.site = $site)
  AND e.session_start_time >= CAST($since AS TIMESTAMPTZ) AND e.session_start_time < CAST($until AS TIMESTAMPTZ)
ORDER BY start_time, kind, conf_id;
