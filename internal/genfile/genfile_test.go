package genfile

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func write(t *testing.T, dir, p, data string) {
	t.Helper()
	full := filepath.Join(dir, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDiffWrite(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "same.json", "{}\n")
	write(t, dir, "old.json", "a\nb\nc\n")
	write(t, dir, "gone.json", "bye\n")
	write(t, dir, "README.md", "not ours\n")
	write(t, dir, "__pycache__/x.json", "cache\n")
	s := Set{Name: "test", Dir: dir, Owned: "*.json", Skip: []string{"__pycache__"}, Files: []File{
		{"same.json", []byte("{}\n")},
		{"old.json", []byte("a\nB\nc\n")},
		{"new.json", []byte("hello\n")},
	}}
	changes, err := s.Diff()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Kind{}
	for _, c := range changes {
		got[c.Path] = c.Kind
	}
	want := map[string]Kind{"old.json": Modify, "new.json": Create, "gone.json": Delete}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("diff %v, want %v", got, want)
	}
	if !reflect.DeepEqual(Paths(changes), []string{"gone.json", "new.json", "old.json"}) {
		t.Errorf("not in path order: %v", Paths(changes))
	}
	u := Unified("connectors", changes[2])
	for _, l := range []string{"--- connectors/old.json", "+++ connectors/old.json", "-b\n", "+B\n", " a\n"} {
		if !strings.Contains(u, l) {
			t.Errorf("unified diff lacks %q:\n%s", l, u)
		}
	}
	if u := Unified("d", changes[1]); !strings.Contains(u, "--- /dev/null") || !strings.Contains(u, "+hello") {
		t.Errorf("create diff:\n%s", u)
	}

	stat, _ := os.Stat(filepath.Join(dir, "same.json"))
	if _, err := s.Write(); err != nil {
		t.Fatal(err)
	}
	if again, err := s.Diff(); err != nil || len(again) != 0 {
		t.Fatalf("after Write: %v %v", again, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "gone.json")); !os.IsNotExist(err) {
		t.Error("an unrendered owned file was kept")
	}
	for _, keep := range []string{"README.md", "__pycache__/x.json"} {
		if _, err := os.Stat(filepath.Join(dir, keep)); err != nil {
			t.Errorf("%s: %v (not the generator's)", keep, err)
		}
	}
	if st, _ := os.Stat(filepath.Join(dir, "same.json")); !st.ModTime().Equal(stat.ModTime()) {
		t.Error("an unchanged file was rewritten")
	}
}

// Without Owned, only rendered files count; a missing directory is all creates.
func TestDiffUnowned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	s := Set{Name: "t", Dir: dir, Files: []File{{"a/b.csv", []byte("x")}}}
	changes, err := s.Diff()
	if err != nil || len(changes) != 1 || changes[0].Kind != Create {
		t.Fatalf("%v %v", changes, err)
	}
	if _, err := s.Write(); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "other.csv", "y")
	if changes, _ := s.Diff(); len(changes) != 0 {
		t.Errorf("an unowned file counted: %v", changes)
	}
}
