package main

import (
	"context"
	"fmt"

	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/positions"
)

// decisionReader reads decisions from the replica first and asks the
// primary for whatever the replica does not have yet (replication lag) or
// when the replica fails. MariaDB is written before the queue forgets a
// request, so the primary always has the decision of a request that is no
// longer pending.
type decisionReader struct {
	replica positions.Decisions // may be nil
	primary positions.Decisions
}

func (d decisionReader) Decisions(ctx context.Context, ids []int64) ([]enroll.Decision, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []enroll.Decision
	missing := ids
	if d.replica != nil {
		if ds, err := d.replica.Decisions(ctx, ids); err == nil {
			out = ds
			if len(ds) == len(ids) {
				return out, nil
			}
			have := make(map[int64]bool, len(ds))
			for _, x := range ds {
				have[x.RequestID] = true
			}
			missing = make([]int64, 0, len(ids)-len(ds))
			for _, id := range ids {
				if !have[id] {
					missing = append(missing, id)
				}
			}
		}
	}
	ds, err := d.primary.Decisions(ctx, missing)
	if err != nil {
		return nil, fmt.Errorf("read decisions on the primary: %w", err)
	}
	return append(out, ds...), nil
}
