package catalog

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Day is a day of the week as stored in course_meetings.day: 0=MON .. 6=SUN.
// Unlike time.Weekday the week starts on Monday.
type Day int

// The days of the week.
const (
	Mon Day = iota
	Tue
	Wed
	Thu
	Fri
	Sat
	Sun
)

var dayNames = [...]string{"MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"}

// String returns the three-letter name used in catalog files ("MON").
func (d Day) String() string {
	if d < Mon || d > Sun {
		return fmt.Sprintf("Day(%d)", int(d))
	}
	return dayNames[d]
}

// MinutesPerDay is the largest valid Meeting.End (24:00).
const MinutesPerDay = 24 * 60

// Meeting is one weekly class meeting: Start and End are minutes after
// midnight, 0 <= Start < End <= 1440.
type Meeting struct {
	Day   Day `json:"day"`
	Start int `json:"start_min"`
	End   int `json:"end_min"`
}

// String formats the meeting as catalog files write it: "MON 09:00-10:15".
func (m Meeting) String() string {
	return fmt.Sprintf("%s %s-%s", m.Day, clock(m.Start), clock(m.End))
}

func clock(min int) string {
	return fmt.Sprintf("%02d:%02d", min/60, min%60)
}

// Valid reports whether the day is MON..SUN and 0 <= Start < End <= 24:00.
func (m Meeting) Valid() bool {
	return m.Day >= Mon && m.Day <= Sun && m.Start >= 0 && m.End > m.Start && m.End <= MinutesPerDay
}

// Overlaps reports whether a and b share a minute: the same day and
// intersecting [Start, End) intervals. Meetings that only touch
// (09:00-10:00 and 10:00-11:00) do not overlap.
func Overlaps(a, b Meeting) bool {
	return a.Day == b.Day && a.Start < b.End && b.Start < a.End
}

// FirstOverlap returns the first pair (x from a, y from b) that overlaps.
// The enroll rules use it to name the clashing meetings.
func FirstOverlap(a, b []Meeting) (x, y Meeting, ok bool) {
	for _, x := range a {
		for _, y := range b {
			if Overlaps(x, y) {
				return x, y, true
			}
		}
	}
	return Meeting{}, Meeting{}, false
}

// FormatMeetings is the normalised text of a section's meetings, as stored in
// courses.meetings: each Meeting.String() joined by ";" ("" for none).
// ParseMeetings(FormatMeetings(ms)) returns ms for any ms it produced.
func FormatMeetings(ms []Meeting) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return strings.Join(parts, ";")
}

// ParseMeetings parses a section's meeting times: ";"-separated entries of
// the form "DAY HH:MM-HH:MM" with DAY one of MON TUE WED THU FRI SAT SUN.
//
// It is lenient about what people type and strict about what they mean:
// spaces around entries and around the dash are ignored, day names are
// case-insensitive, the hour may have one digit ("9:00"), and "~" is accepted
// in place of "-". Times run from 00:00 to 24:00, each end must be after its
// start, and no two meetings may overlap (touching is fine). An empty string
// means no meetings (an online or arranged course) and returns nil.
//
// The result is sorted by day and start time. A failure is a RowError with
// Column "meetings" and Row 0 (ParseCatalog fills in the row).
func ParseMeetings(s string) ([]Meeting, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var ms []Meeting
	for part := range strings.SplitSeq(s, ";") {
		m, err := parseMeeting(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b Meeting) int {
		if a.Day != b.Day {
			return int(a.Day - b.Day)
		}
		if a.Start != b.Start {
			return a.Start - b.Start
		}
		return a.End - b.End
	})
	// Sorted by day and start: a meeting overlaps an earlier one of the same
	// day exactly when it starts before the latest end seen so far that day.
	last := 0 // index of the meeting with the latest end so far on ms[i].Day
	for i := 1; i < len(ms); i++ {
		if ms[i].Day != ms[last].Day {
			last = i
			continue
		}
		if ms[i].Start < ms[last].End {
			return nil, newError(0, "meetings", CodeMeetingsOverlap, s, ms[last].String(), ms[i].String())
		}
		last = i // no overlap, so ms[i] ends after ms[last]
	}
	return ms, nil
}

func parseMeeting(p string) (Meeting, error) {
	bad := func(code string) (Meeting, error) {
		return Meeting{}, newError(0, "meetings", code, p)
	}
	dayText, rangeText, ok := strings.Cut(p, " ")
	if !ok || p == "" {
		return bad(CodeBadMeetingFormat)
	}
	day := Day(slices.Index(dayNames[:], strings.ToUpper(dayText)))
	if day < 0 {
		return bad(CodeBadDay)
	}
	rangeText = strings.TrimSpace(rangeText)
	startText, endText, ok := strings.Cut(rangeText, "-")
	if !ok {
		startText, endText, ok = strings.Cut(rangeText, "~")
	}
	if !ok {
		return bad(CodeBadMeetingFormat)
	}
	start, err := parseClock(strings.TrimSpace(startText))
	if err != nil {
		return bad(err.Error())
	}
	end, err := parseClock(strings.TrimSpace(endText))
	if err != nil {
		return bad(err.Error())
	}
	if end <= start {
		return bad(CodeEndBeforeStart)
	}
	return Meeting{Day: day, Start: start, End: end}, nil
}

var (
	errTimeFormat = errors.New(CodeBadTimeFormat)
	errTimeRange  = errors.New(CodeTimeOutOfRange)
)

// parseClock reads "H:MM" or "HH:MM" as minutes after midnight, 0..1440.
// Its errors' texts are the error codes.
func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 || !allDigits(h) || !allDigits(m) {
		return 0, errTimeFormat
	}
	hh := int(h[0] - '0')
	if len(h) == 2 {
		hh = hh*10 + int(h[1]-'0')
	}
	mm := int(m[0]-'0')*10 + int(m[1]-'0')
	if mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, errTimeRange
	}
	return hh*60 + mm, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
