-- +goose Up
-- Audit of the waitlist: one row per waitlisted student examined when a seat
-- freed (a drop, a capacity increase or a catalog import). status 'enrolled'
-- means the student was given the seat in the same transaction that freed it;
-- 'skipped' means the student was not eligible then (reason is the rule that
-- refused, as in enrollment_requests.reason) and stays on the waitlist.
CREATE TABLE waitlist_promotions (
  id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  course_id      BIGINT UNSIGNED NOT NULL,
  student_id     BIGINT UNSIGNED NOT NULL,
  waitlist_id    BIGINT UNSIGNED NOT NULL,
  waitlisted_at  DATETIME(6) NOT NULL,
  status         ENUM('enrolled','skipped') NOT NULL,
  reason         VARCHAR(40) NOT NULL DEFAULT '',
  cause          VARCHAR(20) NOT NULL COMMENT 'drop | capacity | import',
  decided_at     DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  KEY ix_promotions_course (course_id, decided_at),
  KEY ix_promotions_student (student_id, decided_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The last time a waitlisted student was passed over, and why (shown to them).
ALTER TABLE waitlist
  ADD COLUMN skipped_reason VARCHAR(40) NOT NULL DEFAULT '',
  ADD COLUMN skipped_at DATETIME(6) NULL;

-- +goose Down
ALTER TABLE waitlist DROP COLUMN skipped_at, DROP COLUMN skipped_reason;
DROP TABLE waitlist_promotions;
