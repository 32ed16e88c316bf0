package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/tokenize"
)

const testKey = "test-tokenizer-key-0123456789abcdef"

var testEnv = map[string]string{"SHARDFLOW_REGISTRY": "../../shards.yaml", "SHARDFLOW_TOKEN_KEY": testKey}

func runT(t *testing.T, env map[string]string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, env, strings.NewReader(stdin), &out, &errb)
	if err != nil {
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), exitcode.Of(err)
}

func TestHelp(t *testing.T) {
	out, _, code := runT(t, testEnv, "", "--help")
	for _, want := range []string{"tokenize cdc", "tokenize lookup", "SHARDFLOW_TOKEN_KEY", "AWS_ACCESS_KEY_ID", "exit codes", "75"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help does not mention %q", want)
		}
	}
	if code != 0 {
		t.Errorf("--help exit %d", code)
	}
	if _, _, code := runT(t, testEnv, ""); code != exitcode.Usage {
		t.Errorf("no subcommand: exit %d, want 2", code)
	}
	if _, errs, code := runT(t, testEnv, "", "scan"); code != exitcode.Usage || !strings.Contains(errs, `"scan"`) {
		t.Errorf("unknown subcommand: exit %d %s", code, errs)
	}
	for _, sub := range []string{"cdc", "lookup"} {
		if _, errs, code := runT(t, testEnv, "", sub, "--help"); code != 0 || !strings.Contains(errs, "usage: tokenize "+sub) {
			t.Errorf("%s --help: exit %d, %q", sub, code, errs)
		}
	}
}

func TestLookup(t *testing.T) {
	tk, err := tokenize.New("k1", []byte(testKey))
	if err != nil {
		t.Fatal(err)
	}
	pans := []string{"4111111111111111", "5555555555554444", " 4111111111111111\r"}
	out, errs, code := runT(t, testEnv, strings.Join(pans, "\n")+"\n", "lookup", "--column", "card_number")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := tk.Token("card_number", pans[0]) + "\n" + tk.Token("card_number", pans[1]) + "\n" + tk.Token("card_number", pans[0]) + "\n"
	if out != want {
		t.Fatalf("lookup printed\n%s\nwant\n%s", out, want)
	}
	if tk.Token("card_number", pans[0]) != "tok_k1_EQfI6FlmOkq3gZ3U7xTGiA" {
		t.Fatal("lookup's tokens are not the pinned vectors")
	}
	// the same column, last4 and another key id
	if out, _, _ := runT(t, testEnv, "4111111111111234\n", "lookup", "--column", "card_last4"); out != "1234\n" {
		t.Errorf("last4 lookup = %q", out)
	}
	if out, _, _ := runT(t, testEnv, "4111111111111111\n", "lookup", "--column", "card_number", "--key-id", "k2", "--table", "payments"); !strings.HasPrefix(out, "tok_k2_") {
		t.Errorf("--key-id k2 lookup = %q", out)
	}
}

func TestLookupRefuses(t *testing.T) {
	pan := "4111111111111111"
	noKey := map[string]string{"SHARDFLOW_REGISTRY": "../../shards.yaml"}
	for _, c := range []struct {
		name  string
		env   map[string]string
		stdin string
		args  []string
		want  string
	}{
		{"value in argv", testEnv, "", []string{"lookup", "--column", "card_number", pan}, "never from arguments"},
		{"no column", testEnv, "", []string{"lookup"}, "--column is required"},
		{"drop", testEnv, "737\n", []string{"lookup", "--column", "card_cvv"}, "policy drop"},
		{"keep", testEnv, "x\n", []string{"lookup", "--column", "status"}, "is in tables"},
		{"keep in one table", testEnv, "x\n", []string{"lookup", "--column", "status", "--table", "payments"}, "not tokenized"},
		{"unknown column", testEnv, "x\n", []string{"lookup", "--column", "nope"}, "no table"},
		{"unknown table", testEnv, "x\n", []string{"lookup", "--column", "card_number", "--table", "nope"}, "not in shards.yaml"},
		{"no key", noKey, pan + "\n", []string{"lookup", "--column", "card_number"}, "SHARDFLOW_TOKEN_KEY is not set"},
		{"short key", map[string]string{"SHARDFLOW_REGISTRY": "../../shards.yaml", "SHARDFLOW_TOKEN_KEY": "short"}, pan + "\n", []string{"lookup", "--column", "card_number"}, "shorter than 32"},
		{"bad key id", testEnv, pan + "\n", []string{"lookup", "--column", "card_number", "--key-id", "K_1"}, "key id"},
		{"bad line", testEnv, "4111111111111234\n12\n", []string{"lookup", "--column", "card_last4"}, "stdin line 2"},
	} {
		out, errs, code := runT(t, c.env, c.stdin, c.args...)
		if code != exitcode.Usage || !strings.Contains(errs, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", c.name, code, errs, c.want)
		}
		if strings.Contains(errs, pan) || strings.Contains(errs, "737") || (c.name == "bad line" && strings.Contains(errs, ": 12")) {
			t.Errorf("%s: the value is in stderr: %q", c.name, errs)
		}
		if c.name == "bad line" && out != "1234\n" {
			t.Errorf("bad line: the lines before it were not printed: %q", out)
		}
	}
}

// `tokenize cdc` gets the real seams: the object store and the writer of the batch path.
func TestCDCDeps(t *testing.T) {
	d := cdcDeps(map[string]string{})
	st, err := d.OpenStore(context.Background(), registry.ObjectStore{Kind: "dir", Path: t.TempDir()})
	if err != nil || st == nil {
		t.Fatalf("OpenStore(dir) = %v, %v", st, err)
	}
	if _, err := d.OpenStore(context.Background(), registry.ObjectStore{Kind: "gcs"}); err == nil {
		t.Error("an unknown kind was accepted")
	}
	if _, _, code := runT(t, map[string]string{"SHARDFLOW_REGISTRY": "../../shards.yaml", "SHARDFLOW_ENV": "nowhere"}, "", "cdc", "--bounded"); code != exitcode.Usage {
		t.Errorf("cdc in an unknown environment: exit %d, want 2", code)
	}
}
