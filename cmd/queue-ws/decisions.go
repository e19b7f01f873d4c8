package main

import (
	"context"
	"fmt"

	"github.com/enrollq/enrollq/internal/enroll"
	"github.com/enrollq/enrollq/internal/groupcommit"
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

// groupedDecisions reads the decision of a single request (a watch of a
// request that is no longer in the line) together with the other watches
// arriving at the same time: at most two reads in flight, the others wait
// and go as one SELECT … WHERE id IN (…) (internal/groupcommit). Right after
// registration opens most watches find their request decided already, so
// this is one query for many students instead of one each.
type groupedDecisions struct {
	next  positions.Decisions
	group *groupcommit.Group[int64, foundDecision]
}

type foundDecision struct {
	d  enroll.Decision
	ok bool
}

func newGroupedDecisions(next positions.Decisions) *groupedDecisions {
	g := &groupedDecisions{next: next}
	g.group = groupcommit.New(groupcommit.Config{Slots: 2, Max: 500}, g.readBatch)
	return g
}

func (g *groupedDecisions) Decisions(ctx context.Context, ids []int64) ([]enroll.Decision, error) {
	if len(ids) != 1 {
		return g.next.Decisions(ctx, ids)
	}
	f, err := g.group.Do(ctx, ids[0])
	if err != nil {
		return nil, fmt.Errorf("read decision of request %d: %w", ids[0], err)
	}
	if !f.ok {
		return nil, nil
	}
	return []enroll.Decision{f.d}, nil
}

func (g *groupedDecisions) readBatch(ctx context.Context, ids []int64) ([]foundDecision, error) {
	uniq := make([]int64, 0, len(ids))
	seen := make(map[int64]bool, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	ds, err := g.next.Decisions(ctx, uniq)
	if err != nil {
		return nil, err
	}
	by := make(map[int64]enroll.Decision, len(ds))
	for _, d := range ds {
		by[d.RequestID] = d
	}
	out := make([]foundDecision, len(ids))
	for i, id := range ids {
		out[i].d, out[i].ok = by[id]
	}
	return out, nil
}
