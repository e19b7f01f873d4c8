package search

import (
	"database/sql"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FeedStatement is the search feed's read statement, byte-identical to
// deploy/logstash/sql/courses.sql (the Logstash jdbc input runs the same
// text). It has one parameter, :sql_last_value, the inclusive updated_at
// watermark.
//
//go:embed courses.sql
var FeedStatement string

// feedRow is one row of FeedStatement.
type feedRow struct {
	ID         uint64         `db:"id"`
	Code       string         `db:"code"`
	Section    string         `db:"section"`
	Title      string         `db:"title"`
	TitleEn    string         `db:"title_en"`
	Department string         `db:"department"`
	Professor  string         `db:"professor"`
	Credits    int            `db:"credits"`
	Capacity   int            `db:"capacity"`
	Enrolled   int            `db:"enrolled"`
	SeatsLeft  int            `db:"seats_left"`
	IsOpen     bool           `db:"is_open"`
	Meetings   string         `db:"meetings"`
	Room       string         `db:"room"`
	Category   string         `db:"category"`
	Slots      sql.NullString `db:"slots"`
	DeletedAt  sql.NullTime   `db:"deleted_at"`
	UpdatedAt  time.Time      `db:"updated_at"`
}

// document is the indexed shape of a section (see index.json). The
// Logstash pipeline's filter builds exactly this shape from the same row.
type document struct {
	ID         uint64   `json:"id"`
	Code       string   `json:"code"`
	Section    string   `json:"section"`
	Title      string   `json:"title"`
	TitleEn    string   `json:"title_en"`
	Department string   `json:"department"`
	Professor  string   `json:"professor"`
	Category   string   `json:"category"`
	Credits    int      `json:"credits"`
	Capacity   int      `json:"capacity"`
	Enrolled   int      `json:"enrolled"`
	SeatsLeft  int      `json:"seats_left"`
	IsOpen     bool     `json:"is_open"`
	Meetings   string   `json:"meetings"`
	Room       string   `json:"room"`
	Days       []string `json:"days"`
	Slots      []slot   `json:"slots"`
	FirstStart *int     `json:"first_start,omitempty"` // earliest meeting start, minutes
	LastEnd    *int     `json:"last_end,omitempty"`    // latest meeting end, minutes
	UpdatedAt  string   `json:"updated_at"`
}

// slot is one weekly meeting.
type slot struct {
	Day   string `json:"day"`
	Start int    `json:"start"`
	End   int    `json:"end"`
}

// toDocument builds the indexed document of a row.
func (r feedRow) toDocument() (document, error) {
	d := document{
		ID: r.ID, Code: r.Code, Section: r.Section, Title: r.Title, TitleEn: r.TitleEn,
		Department: r.Department, Professor: r.Professor, Category: r.Category,
		Credits: r.Credits, Capacity: r.Capacity, Enrolled: r.Enrolled, SeatsLeft: r.SeatsLeft,
		IsOpen: r.IsOpen, Meetings: r.Meetings, Room: r.Room,
		Days: []string{}, Slots: []slot{},
		UpdatedAt: r.UpdatedAt.UTC().Format("2006-01-02T15:04:05.000000Z"),
	}
	slots, err := parseSlots(r.Slots.String)
	if err != nil {
		return d, fmt.Errorf("course %d: %w", r.ID, err)
	}
	d.Slots = slots
	seen := [7]bool{}
	for _, s := range slots {
		seen[dayIndex(s.Day)] = true
		if d.FirstStart == nil || s.Start < *d.FirstStart {
			v := s.Start
			d.FirstStart = &v
		}
		if d.LastEnd == nil || s.End > *d.LastEnd {
			v := s.End
			d.LastEnd = &v
		}
	}
	for i, ok := range seen {
		if ok {
			d.Days = append(d.Days, Days[i])
		}
	}
	return d, nil
}

// parseSlots reads the slots column: "0:1080-1155;2:1080-1155".
func parseSlots(s string) ([]slot, error) {
	out := []slot{}
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ";") {
		day, span, ok1 := strings.Cut(part, ":")
		start, end, ok2 := strings.Cut(span, "-")
		di, err1 := strconv.Atoi(day)
		si, err2 := strconv.Atoi(start)
		ei, err3 := strconv.Atoi(end)
		if !ok1 || !ok2 || err1 != nil || err2 != nil || err3 != nil || di < 0 || di > 6 {
			return nil, fmt.Errorf("bad meeting slot %q", part)
		}
		out = append(out, slot{Day: Days[di], Start: si, End: ei})
	}
	return out, nil
}

// hit converts an indexed document back to a Hit.
func (d document) hit() Hit {
	return Hit{
		ID: d.ID, Code: d.Code, Section: d.Section, Title: d.Title, TitleEn: d.TitleEn,
		Professor: d.Professor, Department: d.Department, Category: d.Category,
		Credits: d.Credits, Capacity: d.Capacity, Enrolled: d.Enrolled, SeatsLeft: d.SeatsLeft,
		IsOpen: d.IsOpen, Meetings: d.Meetings, Days: d.Days, Room: d.Room,
	}
}
