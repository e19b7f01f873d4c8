-- +goose Up
CREATE TABLE courses (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  code          VARCHAR(20)  NOT NULL,
  section       VARCHAR(10)  NOT NULL,
  title         VARCHAR(200) NOT NULL,
  title_en      VARCHAR(200) NOT NULL DEFAULT '',
  department    VARCHAR(100) NOT NULL,
  professor     VARCHAR(100) NOT NULL DEFAULT '',
  credits       TINYINT UNSIGNED NOT NULL,
  capacity      INT UNSIGNED NOT NULL,
  enrolled      INT UNSIGNED NOT NULL DEFAULT 0,
  meetings      VARCHAR(200) NOT NULL DEFAULT '',
  room          VARCHAR(100) NOT NULL DEFAULT '',
  category      VARCHAR(50)  NOT NULL DEFAULT '',
  is_open       TINYINT(1)   NOT NULL DEFAULT 1,
  deleted_at    DATETIME(6)  NULL,
  created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (id),
  UNIQUE KEY uq_courses_code_section (code, section),
  KEY ix_courses_updated (updated_at, id),
  KEY ix_courses_department (department),
  CONSTRAINT ck_courses_seats CHECK (enrolled <= capacity),
  CONSTRAINT ck_courses_credits CHECK (credits BETWEEN 1 AND 6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE course_meetings (
  id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  course_id  BIGINT UNSIGNED NOT NULL,
  day        TINYINT UNSIGNED NOT NULL COMMENT '0=MON .. 6=SUN',
  start_min  SMALLINT UNSIGNED NOT NULL COMMENT 'minutes after midnight',
  end_min    SMALLINT UNSIGNED NOT NULL,
  PRIMARY KEY (id),
  KEY ix_meetings_course (course_id),
  KEY ix_meetings_day (day, start_min),
  CONSTRAINT fk_meetings_course FOREIGN KEY (course_id) REFERENCES courses (id) ON DELETE CASCADE,
  CONSTRAINT ck_meetings_interval CHECK (end_min > start_min AND end_min <= 1440 AND day <= 6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE students (
  id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  student_no     VARCHAR(20)  NOT NULL,
  name           VARCHAR(100) NOT NULL,
  year           TINYINT UNSIGNED NOT NULL,
  department     VARCHAR(100) NOT NULL,
  max_credits    TINYINT UNSIGNED NOT NULL DEFAULT 18,
  password_hash  VARCHAR(255) NOT NULL DEFAULT '',
  created_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (id),
  UNIQUE KEY uq_students_no (student_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE enrollments (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  student_id  BIGINT UNSIGNED NOT NULL,
  course_id   BIGINT UNSIGNED NOT NULL,
  request_id  BIGINT UNSIGNED NULL,
  created_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (id),
  UNIQUE KEY uq_enrollments_student_course (student_id, course_id),
  KEY ix_enrollments_course (course_id),
  CONSTRAINT fk_enrollments_student FOREIGN KEY (student_id) REFERENCES students (id),
  CONSTRAINT fk_enrollments_course FOREIGN KEY (course_id) REFERENCES courses (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per admitted request, written once with its final decision.
-- id is the request id handed out at admission; ticket is its place in the FIFO.
CREATE TABLE enrollment_requests (
  id          BIGINT UNSIGNED NOT NULL,
  student_id  BIGINT UNSIGNED NOT NULL,
  course_id   BIGINT UNSIGNED NOT NULL,
  ticket      BIGINT UNSIGNED NOT NULL,
  status      ENUM('queued','enrolled','rejected','cancelled') NOT NULL,
  reason      VARCHAR(40) NOT NULL DEFAULT '',
  created_at  DATETIME(6) NOT NULL,
  decided_at  DATETIME(6) NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_requests_ticket (ticket),
  KEY ix_requests_student (student_id, created_at),
  KEY ix_requests_course_ticket (course_id, ticket),
  KEY ix_requests_decided (decided_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE carts (
  student_id  BIGINT UNSIGNED NOT NULL,
  course_id   BIGINT UNSIGNED NOT NULL,
  position    INT UNSIGNED NOT NULL DEFAULT 0,
  created_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (student_id, course_id),
  CONSTRAINT fk_carts_student FOREIGN KEY (student_id) REFERENCES students (id),
  CONSTRAINT fk_carts_course FOREIGN KEY (course_id) REFERENCES courses (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE waitlist (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  student_id  BIGINT UNSIGNED NOT NULL,
  course_id   BIGINT UNSIGNED NOT NULL,
  created_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (id),
  UNIQUE KEY uq_waitlist_student_course (student_id, course_id),
  KEY ix_waitlist_course (course_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Registration windows per term. year NULL is the window for every class year;
-- a row with a year is a priority window for that class year only.
CREATE TABLE registration_windows (
  id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  term       VARCHAR(20) NOT NULL,
  year       TINYINT UNSIGNED NULL,
  opens_at   DATETIME(6) NOT NULL,
  closes_at  DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  KEY ix_windows_term (term),
  CONSTRAINT ck_windows_interval CHECK (closes_at > opens_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE admins (
  id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  username       VARCHAR(50)  NOT NULL,
  password_hash  VARCHAR(255) NOT NULL,
  created_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (id),
  UNIQUE KEY uq_admins_username (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE admins;
DROP TABLE registration_windows;
DROP TABLE waitlist;
DROP TABLE carts;
DROP TABLE enrollment_requests;
DROP TABLE enrollments;
DROP TABLE students;
DROP TABLE course_meetings;
DROP TABLE courses;
