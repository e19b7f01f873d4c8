-- Course sections changed at or after :sql_last_value, oldest change first:
-- one row per section with its meeting slots ("day:start-end;..." with day
-- 0=MON..6=SUN, minutes after midnight) and seats_left computed.
--
-- This file is the search feed's single read statement. The Logstash jdbc
-- input runs it as is (deploy/logstash/pipeline/courses.conf, tracking
-- updated_at); the in-tree indexer (internal/search/courses.sql, kept
-- byte-identical and checked by TestLogstashStatement) binds :sql_last_value
-- and pages it by (updated_at, id). The bound is inclusive, so rows that share
-- the last timestamp are read again and re-indexed idempotently, never lost.
-- Soft-deleted rows are returned too (deleted_at set): the feed deletes them
-- from the index. Run it against the replica, never the primary.
SELECT
  c.id,
  c.code,
  c.section,
  c.title,
  c.title_en,
  c.department,
  c.professor,
  c.credits,
  c.capacity,
  c.enrolled,
  CAST(c.capacity AS SIGNED) - CAST(c.enrolled AS SIGNED) AS seats_left,
  c.is_open,
  c.meetings,
  c.room,
  c.category,
  (SELECT GROUP_CONCAT(CONCAT(m.day, ':', m.start_min, '-', m.end_min)
                       ORDER BY m.day, m.start_min SEPARATOR ';')
     FROM course_meetings m
    WHERE m.course_id = c.id) AS slots,
  c.deleted_at,
  c.updated_at
FROM courses c
WHERE c.updated_at >= :sql_last_value
ORDER BY c.updated_at, c.id
