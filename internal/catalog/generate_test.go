package catalog

import (
	"bytes"
	"testing"
)

func TestGenerateCatalog(t *testing.T) {
	var a, b bytes.Buffer
	if err := GenerateCatalog(&a, 12000, 1); err != nil {
		t.Fatal(err)
	}
	if err := GenerateCatalog(&b, 12000, 1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("GenerateCatalog is not deterministic")
	}
	sections, errs := ParseCatalog(bytes.NewReader(a.Bytes()))
	if len(errs) > 0 {
		t.Fatalf("generated catalog has %d errors, first: %v", len(errs), errs[0])
	}
	if len(sections) != 12000 {
		t.Fatalf("%d sections, want 12000", len(sections))
	}
	depts := map[string]bool{}
	for _, s := range sections {
		depts[s.Department] = true
	}
	if len(depts) != len(genDepts) {
		t.Errorf("%d departments, want %d", len(depts), len(genDepts))
	}
	var c bytes.Buffer
	if err := GenerateCatalog(&c, 10, 2); err != nil {
		t.Fatal(err)
	}
	if s, errs := ParseCatalog(&c); len(s) != 10 || len(errs) > 0 {
		t.Errorf("seed 2: %d sections, %v", len(s), errs)
	}
	if err := GenerateCatalog(&c, -1, 1); err == nil {
		t.Error("negative size accepted")
	}
}

func TestGenerateRoster(t *testing.T) {
	var a bytes.Buffer
	if err := GenerateRoster(&a, 3000, 1); err != nil {
		t.Fatal(err)
	}
	students, errs := ParseRoster(bytes.NewReader(a.Bytes()))
	if len(errs) > 0 || len(students) != 3000 {
		t.Fatalf("generated roster: %d students, errors %v", len(students), errs)
	}
}
