package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/enrollq/enrollq/internal/enroll"
)

// CourseView is a section as students see it. The JSON field names match
// internal/search's Hit, so either backend can answer GET /courses.
type CourseView struct {
	ID         int64    `json:"id" db:"id"`
	Code       string   `json:"code" db:"code"`
	Section    string   `json:"section" db:"section"`
	Title      string   `json:"title" db:"title"`
	TitleEn    string   `json:"title_en" db:"title_en"`
	Professor  string   `json:"professor" db:"professor"`
	Department string   `json:"department" db:"department"`
	Category   string   `json:"category" db:"category"`
	Credits    int      `json:"credits" db:"credits"`
	Capacity   int      `json:"capacity" db:"capacity"`
	Enrolled   int      `json:"enrolled" db:"enrolled"`
	SeatsLeft  int      `json:"seats_left" db:"seats_left"`
	IsOpen     bool     `json:"is_open" db:"is_open"`
	Meetings   string   `json:"meetings" db:"meetings"` // "MON 18:00-19:15;WED 18:00-19:15"
	Days       []string `json:"days"`
	Room       string   `json:"room" db:"room"`
	DayList    *string  `json:"-" db:"day_list"` // "0,2" from course_meetings
}

// courseCols selects a CourseView from courses c.
const courseCols = `c.id, c.code, c.section, c.title, c.title_en, c.professor, c.department, c.category, c.credits,
	c.capacity, c.enrolled, CAST(c.capacity AS SIGNED) - CAST(c.enrolled AS SIGNED) AS seats_left,
	(c.is_open = 1 AND c.deleted_at IS NULL) AS is_open, c.meetings, c.room,
	(SELECT GROUP_CONCAT(DISTINCT m.day ORDER BY m.day) FROM course_meetings m WHERE m.course_id = c.id) AS day_list`

func (v *CourseView) fill() {
	v.Days = []string{}
	if v.DayList == nil {
		return
	}
	for _, d := range strings.Split(*v.DayList, ",") {
		if i, err := strconv.Atoi(d); err == nil && i >= 0 && i < len(Days) {
			v.Days = append(v.Days, Days[i])
		}
	}
}

// Days are the meeting-day keys in week order (course_meetings.day 0..6).
var Days = []string{"MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"}

// CourseFilter selects sections for GET /courses.
type CourseFilter struct {
	Text       string
	Department string
	Category   string
	Credits    int
	Days       []int // course_meetings.day values; a section meeting on any matches
	OpenOnly   bool  // open sections with seats left
	Limit      int
	Offset     int
}

// CoursePage is one page of sections.
type CoursePage struct {
	Hits   []CourseView `json:"hits"`
	Total  int64        `json:"total"`
	Next   string       `json:"next,omitempty"` // pass as after= for the next page
	Source string       `json:"source"`
}

func (s *Service) replica() *sqlx.DB {
	if s.Replica != nil {
		return s.Replica
	}
	return s.DB
}

// Courses lists sections matching f from the replica, by code and section.
func (s *Service) Courses(ctx context.Context, f CourseFilter) (CoursePage, error) {
	where := []string{"c.deleted_at IS NULL"}
	var args []any
	for _, w := range strings.Fields(f.Text) {
		p := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(w) + "%"
		where = append(where, "(c.code LIKE ? OR c.title LIKE ? OR c.title_en LIKE ? OR c.professor LIKE ?)")
		args = append(args, p, p, p, p)
	}
	if f.Department != "" {
		where = append(where, "c.department = ?")
		args = append(args, f.Department)
	}
	if f.Category != "" {
		where = append(where, "c.category = ?")
		args = append(args, f.Category)
	}
	if f.Credits > 0 {
		where = append(where, "c.credits = ?")
		args = append(args, f.Credits)
	}
	if len(f.Days) > 0 {
		q, a, err := sqlx.In("EXISTS (SELECT 1 FROM course_meetings m WHERE m.course_id = c.id AND m.day IN (?))", f.Days)
		if err != nil {
			return CoursePage{}, err
		}
		where = append(where, q)
		args = append(args, a...)
	}
	if f.OpenOnly {
		where = append(where, "c.is_open = 1 AND c.capacity > c.enrolled")
	}
	cond := strings.Join(where, " AND ")
	page := CoursePage{Hits: []CourseView{}, Source: "sql"}
	db := s.replica()
	if err := db.GetContext(ctx, &page.Total, "SELECT COUNT(*) FROM courses c WHERE "+cond, args...); err != nil {
		return CoursePage{}, fmt.Errorf("count courses: %w", err)
	}
	q := "SELECT " + courseCols + " FROM courses c WHERE " + cond + " ORDER BY c.code, c.section LIMIT ? OFFSET ?"
	if err := db.SelectContext(ctx, &page.Hits, q, append(args, f.Limit, f.Offset)...); err != nil {
		return CoursePage{}, fmt.Errorf("list courses: %w", err)
	}
	for i := range page.Hits {
		page.Hits[i].fill()
	}
	if int64(f.Offset+len(page.Hits)) < page.Total {
		page.Next = fmt.Sprint(f.Offset + len(page.Hits))
	}
	return page, nil
}

// CourseDetail is one section with its live seat numbers.
type CourseDetail struct {
	CourseView
	MeetingSlots []Slot `json:"meeting_slots"`
	// SeatHint is the queue's fast estimate of seats still to be had
	// (capacity − enrolled − requests waiting); MariaDB decides.
	SeatHint *int64 `json:"seat_hint,omitempty"`
	Waitlist int64  `json:"waitlist"` // students on the waitlist
}

// Slot is one weekly meeting: Day 0=MON..6=SUN, minutes after midnight.
type Slot struct {
	Day      int    `json:"day" db:"day"`
	DayName  string `json:"day_name"`
	StartMin int    `json:"start_min" db:"start_min"`
	EndMin   int    `json:"end_min" db:"end_min"`
}

// Course returns one section with live seats (from the replica, plus the
// Redis seat hint).
func (s *Service) Course(ctx context.Context, id int64) (CourseDetail, error) {
	var d CourseDetail
	db := s.replica()
	if err := db.GetContext(ctx, &d.CourseView, "SELECT "+courseCols+" FROM courses c WHERE c.id = ? AND c.deleted_at IS NULL", id); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return d, enroll.ErrUnknownCourse
		}
		return d, fmt.Errorf("read course %d: %w", id, err)
	}
	d.fill()
	d.MeetingSlots = []Slot{}
	if err := db.SelectContext(ctx, &d.MeetingSlots, "SELECT day, start_min, end_min FROM course_meetings WHERE course_id = ? ORDER BY day, start_min", id); err != nil {
		return d, fmt.Errorf("read meetings of %d: %w", id, err)
	}
	for i := range d.MeetingSlots {
		d.MeetingSlots[i].DayName = Days[d.MeetingSlots[i].Day%7]
	}
	if err := db.GetContext(ctx, &d.Waitlist, "SELECT COUNT(*) FROM waitlist WHERE course_id = ?", id); err != nil {
		return d, fmt.Errorf("read waitlist of %d: %w", id, err)
	}
	if s.Queue != nil {
		if h, ok, err := s.Queue.SeatHint(ctx, id); err == nil && ok {
			d.SeatHint = &h
		}
	}
	return d, nil
}
