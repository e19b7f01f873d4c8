package enroll

import (
	"time"
)

// Meeting is one weekly class meeting: Day 0=MON..6=SUN, Start and End in
// minutes after midnight, End > Start.
type Meeting struct {
	Day   int
	Start int
	End   int
}

// Overlaps reports whether two meetings share time. Touching intervals
// (one ends at 10:00, the next starts at 10:00) do not overlap.
func (m Meeting) Overlaps(o Meeting) bool {
	return m.Day == o.Day && m.Start < o.End && o.Start < m.End
}

// Course is what the rules need to know about a section.
type Course struct {
	ID       int64
	Code     string
	Credits  int
	Capacity int
	Enrolled int
	Open     bool
	Meetings []Meeting
}

// Free returns the seats left.
func (c Course) Free() int { return c.Capacity - c.Enrolled }

// Student is what the rules need to know about a student: the limit and the
// sections they are enrolled in now.
type Student struct {
	ID         int64
	Year       int
	MaxCredits int
	Enrolled   []Course
}

// Credits returns the credits of the current enrollments.
func (s Student) Credits() int {
	n := 0
	for _, c := range s.Enrolled {
		n += c.Credits
	}
	return n
}

// Window is a registration window. Year 0 applies to every class year; a
// window with a Year is a priority window for that class year only.
type Window struct {
	Year   int
	Opens  time.Time
	Closes time.Time
}

// WindowOpen reports whether a student of the given class year may register
// at instant at. With no windows configured registration is governed only by
// the open flag, so it is open. Intervals are half-open: [Opens, Closes).
func WindowOpen(ws []Window, year int, at time.Time) bool {
	if len(ws) == 0 {
		return true
	}
	for _, w := range ws {
		if w.Year != 0 && w.Year != year {
			continue
		}
		if !at.Before(w.Opens) && at.Before(w.Closes) {
			return true
		}
	}
	return false
}

// Check applies the registration rules, except the window, to a student
// asking for course c. It returns ReasonNone when the student may take a seat.
// The order of the checks fixes which reason a student sees first.
func Check(s Student, c Course) Reason {
	if !c.Open {
		return ReasonCourseClosed
	}
	for _, e := range s.Enrolled {
		if e.ID == c.ID {
			return ReasonAlreadyEnrolled
		}
	}
	for _, e := range s.Enrolled {
		if e.Code == c.Code {
			return ReasonSameCode
		}
	}
	if s.Credits()+c.Credits > s.MaxCredits {
		return ReasonCreditLimit
	}
	if TimeConflict(s.Enrolled, c) {
		return ReasonTimeConflict
	}
	if c.Free() <= 0 {
		return ReasonFull
	}
	return ReasonNone
}

// TimeConflict reports whether any meeting of c overlaps a meeting of the
// enrolled sections.
func TimeConflict(enrolled []Course, c Course) bool {
	for _, e := range enrolled {
		for _, a := range e.Meetings {
			for _, b := range c.Meetings {
				if a.Overlaps(b) {
					return true
				}
			}
		}
	}
	return false
}
