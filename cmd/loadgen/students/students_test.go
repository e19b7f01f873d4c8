package students

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/enrollq/enrollq/internal/auth"
	"github.com/enrollq/enrollq/internal/dbtest"
)

func TestCSVRoundTrip(t *testing.T) {
	in := []Token{{StudentID: 1, StudentNo: "202300001", Year: 3, Token: "a.b"}, {StudentID: 22, StudentNo: "7700000001", Year: 1, Token: "c.d"}}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, in); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "student_id,student_no,year,token\n") {
		t.Errorf("header: %q", buf.String())
	}
	out, err := ReadCSV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-in +out):\n%s", diff)
	}
	for _, bad := range []string{"", "id,no,year,token\n", "student_id,student_no,year,token\nx,1,1,t\n", "student_id,student_no,year,token\n1,2,3\n"} {
		if _, err := ReadCSV(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadCSV(%q): want an error", bad)
		}
	}
}

func TestGenerateLoadRoster(t *testing.T) {
	a, err := GenerateLoadRoster(1000, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateLoadRoster(1000, 1)
	if len(a) != 1000 || !cmp.Equal(a, b) {
		t.Fatal("roster not deterministic or wrong size")
	}
	seen := map[string]bool{}
	for i, s := range a {
		if s.StudentNo != LoadStudentNo(i) || !strings.HasPrefix(s.StudentNo, LoadPrefix) || len(s.StudentNo) != 10 || seen[s.StudentNo] {
			t.Fatalf("student %d: number %q", i, s.StudentNo)
		}
		seen[s.StudentNo] = true
	}
}

// TestEnsureAndIssue imports load students through the import path and
// issues tokens the API accepts.
func TestEnsureAndIssue(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	dbtest.SeedStudents(t, db.DB, 5, 18, "")
	res, err := Ensure(ctx, db.DB, 50, "pw-load", 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Before != 5 || res.Imported != 45 || res.After != 50 {
		t.Errorf("ensure = %+v", res)
	}
	// Idempotent; a bigger roster only adds the missing ones.
	if res, err := Ensure(ctx, db.DB, 50, "pw-load", 4, nil); err != nil || res.Imported != 0 {
		t.Errorf("second ensure = %+v, %v", res, err)
	}
	if res, err := Ensure(ctx, db.DB, 60, "pw-load", 4, nil); err != nil || res.Imported != 10 || res.After != 60 {
		t.Errorf("ensure 60 = %+v, %v", res, err)
	}
	signer := auth.NewSigner("secret")
	toks, err := Issue(ctx, db.DB, signer, 40, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 40 {
		t.Fatalf("%d tokens", len(toks))
	}
	for _, tk := range toks {
		c, err := signer.Verify(tk.Token, auth.KindStudent)
		if err != nil || c.Subject != tk.StudentID || c.StudentNo != tk.StudentNo || c.Year != tk.Year {
			t.Fatalf("token of %+v: claims %+v, %v", tk, c, err)
		}
	}
	if toks[0].StudentID >= toks[1].StudentID {
		t.Error("tokens not in id order")
	}
	if _, err := Issue(ctx, db.DB, signer, 1000, time.Hour); err == nil {
		t.Error("issuing more tokens than students: want an error")
	}
	all, err := Issue(ctx, db.DB, signer, 0, time.Hour)
	if err != nil || len(all) != 60 {
		t.Errorf("all = %d, %v", len(all), err)
	}
}
