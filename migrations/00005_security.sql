-- +goose Up
-- Token versions: every token carries the version of its subject; a
-- password change or a registrar's revoke bumps it, and tokens with an older
-- version are refused (401 token_revoked). must_change_password: the student
-- still has the initial password of the import and may only change it.
ALTER TABLE students
  ADD COLUMN token_version INT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN must_change_password TINYINT(1) NOT NULL DEFAULT 0;
ALTER TABLE admins
  ADD COLUMN token_version INT UNSIGNED NOT NULL DEFAULT 0;
-- Student numbers are stored trimmed (the collation ignores trailing spaces
-- in comparisons, so no two rows can collide).
UPDATE students SET student_no = TRIM(student_no) WHERE student_no <> TRIM(student_no);

-- +goose Down
ALTER TABLE admins DROP COLUMN token_version;
ALTER TABLE students DROP COLUMN must_change_password, DROP COLUMN token_version;
