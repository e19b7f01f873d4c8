-- +goose Up
-- Every drop is logged: seats freed by drops explain why a later request may
-- take a seat an earlier one was refused (the fairness check reads this).
CREATE TABLE enrollment_drops (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  student_id  BIGINT UNSIGNED NOT NULL,
  course_id   BIGINT UNSIGNED NOT NULL,
  dropped_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (id),
  KEY ix_drops_course (course_id, dropped_at),
  KEY ix_drops_student (student_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE enrollment_drops;
