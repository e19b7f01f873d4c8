// Package verify checks DESIGN's laws against MariaDB itself. Tests, fault
// runs and the load generator all call it after a run.
package verify

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
)

// Report counts law violations; a clean run has every field zero.
type Report struct {
	OversoldSections  int64 `json:"oversold_sections"`  // law 1: enrolled > capacity
	EnrolledMismatch  int64 `json:"enrolled_mismatch"`  // courses.enrolled ≠ count(enrollments)
	EnrollmentOrphans int64 `json:"enrollment_orphans"` // enrollments without an enrolled decision (excluding drops)
	NonFinal          int64 `json:"non_final"`          // decisions not in a final state
	Lost              int64 `json:"lost"`               // admitted ids with no decision
	Unexpected        int64 `json:"unexpected"`         // decisions for ids never admitted
	FIFOViolations    int64 `json:"fifo_violations"`    // law 3, see Check
	FalseSoldOut      int64 `json:"false_sold_out"`     // law 7, see Check
}

// OK reports whether no law was broken.
func (r Report) OK() bool { return r == Report{} }

func (r Report) String() string {
	return fmt.Sprintf("oversold=%d enrolled_mismatch=%d orphans=%d non_final=%d lost=%d unexpected=%d fifo=%d false_sold_out=%d",
		r.OversoldSections, r.EnrolledMismatch, r.EnrollmentOrphans, r.NonFinal, r.Lost, r.Unexpected, r.FIFOViolations, r.FalseSoldOut)
}

// Check verifies the laws on db. admitted, when not nil, is the set of
// request ids the caller saw admitted: each must have exactly one final
// decision (the primary key makes "more than one" impossible to store), and
// no decision may exist for an id outside it.
//
// Fairness: within a course, an enrolled request must not have a higher
// ticket than a request rejected for lack of seats (sold_out), unless a drop
// freed a seat in that course between the two decisions.
//
// No false "sold out" (law 7): refusal_marks holds, per section, the latest
// "sold out" admission answered (the ticket counter's value then, and when;
// copied from Redis by the drain). Every request with a higher ticket came
// later; one of them enrolled is a violation unless a seat of that section
// was freed between the refusal and its decision: a rejection or a
// cancellation decided, a drop, a capacity raise. Seats come back to the
// hints before the transaction that frees them commits, and those rows are
// stamped after the hints knew, so a true refusal always precedes the
// freeing it lost to. The times are Redis' (the refusal) and the deciding
// host's: the check assumes the clocks of one site.
func Check(ctx context.Context, db *sqlx.DB, admitted []int64) (Report, error) {
	var r Report
	qs := []struct {
		dst *int64
		q   string
	}{
		{&r.OversoldSections, `SELECT COUNT(*) FROM courses WHERE enrolled > capacity`},
		{&r.EnrolledMismatch, `SELECT COUNT(*) FROM courses c
			LEFT JOIN (SELECT course_id, COUNT(*) n FROM enrollments GROUP BY course_id) e ON e.course_id = c.id
			WHERE c.enrolled <> COALESCE(e.n, 0)`},
		{&r.EnrollmentOrphans, `SELECT COUNT(*) FROM enrollments e
			LEFT JOIN enrollment_requests q ON q.id = e.request_id AND q.status = 'enrolled'
			WHERE e.request_id IS NOT NULL AND q.id IS NULL`},
		{&r.NonFinal, `SELECT COUNT(*) FROM enrollment_requests WHERE status NOT IN ('enrolled','rejected','cancelled') OR decided_at IS NULL`},
		{&r.FIFOViolations, `SELECT COUNT(*) FROM enrollment_requests e
			JOIN enrollment_requests x ON x.course_id = e.course_id AND x.status = 'rejected'
			     AND x.reason = 'sold_out' AND x.ticket < e.ticket
			WHERE e.status = 'enrolled'
			  AND NOT EXISTS (SELECT 1 FROM enrollment_drops d WHERE d.course_id = e.course_id
			                  AND d.dropped_at >= x.decided_at AND d.dropped_at <= e.decided_at)`},
		{&r.FalseSoldOut, `SELECT COUNT(*) FROM refusal_marks m
			JOIN enrollment_requests e ON e.course_id = m.course_id AND e.status = 'enrolled' AND e.ticket > m.ticket
			WHERE NOT EXISTS (SELECT 1 FROM enrollment_requests x WHERE x.course_id = m.course_id
			                  AND x.status IN ('rejected','cancelled') AND x.decided_at >= m.refused_at AND x.decided_at <= e.decided_at)
			  AND NOT EXISTS (SELECT 1 FROM enrollment_drops d WHERE d.course_id = m.course_id
			                  AND d.dropped_at >= m.refused_at AND d.dropped_at <= e.decided_at)
			  AND NOT EXISTS (SELECT 1 FROM capacity_changes c WHERE c.course_id = m.course_id
			                  AND c.new_capacity > c.old_capacity AND c.changed_at >= m.refused_at AND c.changed_at <= e.decided_at)`},
	}
	for _, q := range qs {
		if err := db.GetContext(ctx, q.dst, q.q); err != nil {
			return r, fmt.Errorf("verify: %s: %w", firstLine(q.q), err)
		}
	}
	if admitted != nil {
		var ids []int64
		if err := db.SelectContext(ctx, &ids, `SELECT id FROM enrollment_requests`); err != nil {
			return r, fmt.Errorf("verify: read decisions: %w", err)
		}
		have := make(map[int64]bool, len(ids))
		for _, id := range ids {
			have[id] = true
		}
		want := make(map[int64]bool, len(admitted))
		for _, id := range admitted {
			want[id] = true
			if !have[id] {
				r.Lost++
			}
		}
		for _, id := range ids {
			if !want[id] {
				r.Unexpected++
			}
		}
	}
	return r, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
