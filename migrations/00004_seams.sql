-- +goose Up
-- The drain's fence: the token of the current drain leader, per term. Every
-- decision transaction of a leader checks (and locks) its row first, so a
-- former leader's commit is refused by MariaDB itself; a new leader raises
-- the token before it settles anything. conn is the connection of the
-- leader's latest decision transaction (a new leader blocked by a paused
-- former leader's open transaction ends it with KILL).
CREATE TABLE drain_fences (
  term        VARCHAR(20)     NOT NULL,
  token       BIGINT UNSIGNED NOT NULL,
  conn        BIGINT UNSIGNED NOT NULL DEFAULT 0,
  batches     BIGINT UNSIGNED NOT NULL DEFAULT 0,
  updated_at  DATETIME(6)     NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (term)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Law 7 (no false "sold out"): per section, the latest "sold out" answer
-- given by admission (the ticket counter's value then, and Redis' time),
-- copied from Redis by the drain. internal/verify reports an enrollment
-- with a later ticket when no seat was freed between the two.
CREATE TABLE refusal_marks (
  course_id   BIGINT UNSIGNED NOT NULL,
  ticket      BIGINT UNSIGNED NOT NULL,
  refused_at  DATETIME(6)     NOT NULL,
  PRIMARY KEY (course_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Every capacity change is logged: a raise frees seats, which explains a
-- later enrollment after a "sold out" (the law 7 check reads this).
CREATE TABLE capacity_changes (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  course_id     BIGINT UNSIGNED NOT NULL,
  old_capacity  INT UNSIGNED    NOT NULL,
  new_capacity  INT UNSIGNED    NOT NULL,
  changed_at    DATETIME(6)     NOT NULL,
  PRIMARY KEY (id),
  KEY ix_capacity_changes_course (course_id, changed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE capacity_changes;
DROP TABLE refusal_marks;
DROP TABLE drain_fences;
