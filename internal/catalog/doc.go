// Package catalog owns the course catalog and student roster imports: the CSV
// formats, their validation, the meeting-time model, and the all-or-nothing
// writes into courses, course_meetings and students.
//
// # Parsing (no database)
//
// ParseCatalog and ParseRoster read a whole file and report every problem in
// it, not just the first, as RowErrors: a spreadsheet row number (header = 1),
// the column, a stable snake_case code and a Korean and an English message.
// The rows they return satisfy CheckSections / CheckStudents, which state the
// invariants the database relies on:
//
//   - (code, section) and student_no are unique in the file; codes and
//     sections are upper-case, since the database compares them
//     case-insensitively;
//   - every text is valid UTF-8 without control characters, fits its VARCHAR
//     column, and does not start with a character a spreadsheet would run as
//     a formula (= + - @ tab CR) when an admin exports and reopens the data;
//   - credits 1–6, capacity 0–10000, year 1–6, max_credits 1–30;
//   - meetings are sorted, lie within 00:00–24:00, end after they start and
//     never overlap within a section; their normalised text (FormatMeetings)
//     parses back to the same meetings.
//
// Meeting, Overlaps and FirstOverlap are the time model the enroll rules
// reuse for time-clash checks: Day 0=MON..6=SUN, minutes after midnight,
// half-open intervals (touching meetings do not clash).
//
// # Importing (MariaDB)
//
// ImportCatalog and ImportStudents write in one transaction and either
// commit everything or change nothing (DESIGN.md law 6). They upsert by
// natural key in chunks of 500 rows with INSERT ... ON DUPLICATE KEY UPDATE,
// skip rows that are already equal, never touch courses.enrolled or is_open,
// never delete rows absent from the file, and refuse a capacity below the
// current enrolled count (capacity_below_enrolled) so no import can create an
// oversold section (law 1). Existing rows named by the file are locked
// (SELECT ... FOR UPDATE) for the duration, so a concurrent enrollment in an
// imported section waits for the import rather than racing it.
//
// GenerateCatalog and GenerateRoster write large, valid, deterministic files
// for benchmarks and load tests. docs/IMPORT.md is the user-facing reference.
package catalog
