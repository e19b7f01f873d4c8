package catalog

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseMeetings(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Meeting
		text string // normalised; "" means same as in
	}{
		{in: "", want: nil},
		{in: "   ", want: nil, text: ""},
		{in: "MON 09:00-10:15", want: []Meeting{{Mon, 540, 615}}},
		{in: "MON 18:00-19:15;WED 18:00-19:15", want: []Meeting{{Mon, 1080, 1155}, {Wed, 1080, 1155}}},
		{in: "WED 18:00-19:15;MON 18:00-19:15", want: []Meeting{{Mon, 1080, 1155}, {Wed, 1080, 1155}}, text: "MON 18:00-19:15;WED 18:00-19:15"},
		{in: "THU 13:00-15:50", want: []Meeting{{Thu, 780, 950}}},
		{in: "MON 09:00-10:00;MON 10:00-11:00", want: []Meeting{{Mon, 540, 600}, {Mon, 600, 660}}}, // touching is fine
		{in: "MON 10:00-11:00;TUE 10:30-11:00", want: []Meeting{{Mon, 600, 660}, {Tue, 630, 660}}}, // other day
		{in: " mon 9:00 - 10:15 ; Fri 13:00~14:00 ", want: []Meeting{{Mon, 540, 615}, {Fri, 780, 840}}, text: "MON 09:00-10:15;FRI 13:00-14:00"},
		{in: "SUN 00:00-24:00", want: []Meeting{{Sun, 0, 1440}}},
		{in: "SAT 23:59-24:00", want: []Meeting{{Sat, 1439, 1440}}},
		{in: "MON  09:00-10:00", want: []Meeting{{Mon, 540, 600}}, text: "MON 09:00-10:00"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMeetings(tc.in)
			if err != nil {
				t.Fatalf("ParseMeetings(%q): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseMeetings(%q) (-want +got):\n%s", tc.in, diff)
			}
			text := tc.text
			if text == "" && tc.in != "" && tc.in != "   " {
				text = tc.in
			}
			if got := FormatMeetings(got); got != text {
				t.Errorf("FormatMeetings = %q, want %q", got, text)
			}
		})
	}
}

func TestParseMeetingsErrors(t *testing.T) {
	for _, tc := range []struct {
		in, code string
	}{
		{"MON", CodeBadMeetingFormat},
		{"MON09:00-10:00", CodeBadMeetingFormat},
		{"MON 09:00", CodeBadMeetingFormat},
		{"MON 09:00-10:00;", CodeBadMeetingFormat},
		{";MON 09:00-10:00", CodeBadMeetingFormat},
		{"MON 09:00-10:00,WED 09:00-10:00", CodeBadTimeFormat},
		{"MOM 09:00-10:00", CodeBadDay},
		{"월 09:00-10:00", CodeBadDay},
		{"MONDAY 09:00-10:00", CodeBadDay},
		{"MON 9-10", CodeBadTimeFormat},
		{"MON 09:0-10:00", CodeBadTimeFormat},
		{"MON 0900-1000", CodeBadTimeFormat},
		{"MON 09:00-", CodeBadTimeFormat},
		{"MON 09:00-10:00:00", CodeBadTimeFormat},
		{"MON ９:00-10:00", CodeBadTimeFormat},
		{"MON 123:00-124:00", CodeBadTimeFormat},
		{"MON 25:00-26:00", CodeTimeOutOfRange},
		{"MON 09:60-10:00", CodeTimeOutOfRange},
		{"MON 23:00-24:01", CodeTimeOutOfRange},
		{"MON 10:00-09:00", CodeEndBeforeStart},
		{"MON 10:00-10:00", CodeEndBeforeStart},
		{"MON 24:00-24:00", CodeEndBeforeStart},
		{"MON 09:00-10:30;MON 10:00-11:00", CodeMeetingsOverlap},
		{"MON 09:00-12:00;MON 10:00-10:30", CodeMeetingsOverlap},
		{"MON 09:00-10:00;MON 09:00-10:00", CodeMeetingsOverlap},
		{"MON 09:00-13:00;MON 10:00-10:30;MON 11:00-11:30", CodeMeetingsOverlap},
		{"MON 11:00-11:30;MON 10:00-10:30;MON 09:00-13:00", CodeMeetingsOverlap},
	} {
		t.Run(tc.in, func(t *testing.T) {
			ms, err := ParseMeetings(tc.in)
			var re RowError
			if !errors.As(err, &re) {
				t.Fatalf("ParseMeetings(%q) = %v, %v; want RowError %s", tc.in, ms, err, tc.code)
			}
			if re.Code != tc.code || re.Column != "meetings" || re.Message == "" || re.MessageEN == "" {
				t.Errorf("ParseMeetings(%q) error = %+v, want code %s in column meetings", tc.in, re, tc.code)
			}
			if ms != nil {
				t.Errorf("meetings returned with an error: %v", ms)
			}
		})
	}
}

func TestOverlaps(t *testing.T) {
	for _, tc := range []struct {
		a, b Meeting
		want bool
	}{
		{Meeting{Mon, 540, 600}, Meeting{Mon, 600, 660}, false},
		{Meeting{Mon, 540, 601}, Meeting{Mon, 600, 660}, true},
		{Meeting{Mon, 540, 700}, Meeting{Mon, 600, 660}, true},
		{Meeting{Mon, 540, 700}, Meeting{Tue, 600, 660}, false},
		{Meeting{Fri, 0, 1440}, Meeting{Fri, 1439, 1440}, true},
	} {
		if got := Overlaps(tc.a, tc.b); got != tc.want {
			t.Errorf("Overlaps(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := Overlaps(tc.b, tc.a); got != tc.want {
			t.Errorf("Overlaps(%v, %v) = %v, want %v (symmetry)", tc.b, tc.a, got, tc.want)
		}
	}
	x, y, ok := FirstOverlap(
		[]Meeting{{Mon, 540, 615}, {Wed, 540, 615}},
		[]Meeting{{Tue, 540, 615}, {Wed, 600, 700}})
	if !ok || x != (Meeting{Wed, 540, 615}) || y != (Meeting{Wed, 600, 700}) {
		t.Errorf("FirstOverlap = %v %v %v", x, y, ok)
	}
	if _, _, ok := FirstOverlap([]Meeting{{Mon, 540, 600}}, []Meeting{{Mon, 600, 660}}); ok {
		t.Error("FirstOverlap found an overlap between touching meetings")
	}
}

func TestMeetingString(t *testing.T) {
	for _, m := range []Meeting{{Mon, 0, 1}, {Sun, 1439, 1440}, {Wed, 605, 1330}} {
		back, err := ParseMeetings(m.String())
		if err != nil || len(back) != 1 || back[0] != m {
			t.Errorf("ParseMeetings(%q) = %v, %v; want [%v]", m.String(), back, err, m)
		}
	}
	if got := (Meeting{Tue, 9*60 + 5, 10 * 60}).String(); got != "TUE 09:05-10:00" {
		t.Errorf("String = %q", got)
	}
	if got := Day(9).String(); got != "Day(9)" {
		t.Errorf("Day(9).String() = %q", got)
	}
}
