// Package enroll owns the registration rules and the MariaDB transaction
// that decides requests, plus the drain scheduler that feeds it.
//
// Rules (rules.go) are pure functions: meeting overlap (touching intervals
// allowed), already enrolled, another section of the same course code, credit
// limit, registration windows (with priority windows per class year), open
// section, and a free seat.
//
// Store.DecideBatch decides a batch in one READ COMMITTED transaction:
//
//  1. read prior decisions of the batch's request ids (a replay is a no-op);
//  2. lock the section rows (SELECT … FOR UPDATE, id order), then the
//     student rows (id order);
//  3. read the students' current enrollments and all meetings involved;
//  4. apply the rules in ticket order against the locked counts;
//  5. insert enrollments, update courses.enrolled, insert one row per
//     decision in enrollment_requests keyed by request id; commit.
//
// Guarantees: enrolled ≤ capacity (row locks, plus a CHECK constraint as a
// last line); courses.enrolled equals the count of enrollments rows (both
// change in the same transaction); a request id is decided at most once (its
// primary key) and, through the scheduler's recovery, at least once.
//
// Waitlists (waitlist.go): a student may join a full section's waitlist
// (JoinWaitlist locks the section row, so a concurrent drop either frees the
// seat first or promotes after). Whenever a seat frees — Store.Drop /
// DropPromote, SetCapacity, PromoteAll after an import — PromoteWaitlist runs
// inside the very transaction that freed it: waitlisted students are checked
// in waitlist order with Check, the first eligible ones take the free seats
// (enrollments.request_id NULL), ineligible ones are skipped but keep their
// place, and every examination is logged in waitlist_promotions. Row locks
// (section, then waitlist entries, then each student) keep enrolled ≤
// capacity; the callers update the Redis hints after commit.
//
// The Scheduler elects one drainer through a redsync lock with a trust
// window (extend every TTL/3; step down when an extension fails or the
// window passes), settles whatever a previous leader left in flight before
// draining (decided → ack, undecided → back at its ticket), and acks every
// committed batch even if leadership was lost meanwhile.
package enroll
