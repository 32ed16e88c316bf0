package tokenize

import (
	"strings"
	"testing"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/registry"
)

func TestFromEnv(t *testing.T) {
	const key = "test-tokenizer-key-0123456789abcdef"
	cfg := registry.Tokenizer{KeyID: "k1", Key: registry.SecretRef{Env: "SHARDFLOW_TOKEN_KEY"}}
	tk, err := FromEnv(cfg, map[string]string{"SHARDFLOW_TOKEN_KEY": key})
	if err != nil {
		t.Fatal(err)
	}
	if tk.KeyID() != "k1" || tk.Token("card_number", "4111111111111111") != "tok_k1_EQfI6FlmOkq3gZ3U7xTGiA" {
		t.Errorf("FromEnv gives key id %s, token %s", tk.KeyID(), tk.Token("card_number", "4111111111111111"))
	}
	for _, c := range []struct {
		name  string
		keyID string
		env   map[string]string
		want  string
	}{
		{"not set", "k1", map[string]string{}, "tokenizer: the key variable SHARDFLOW_TOKEN_KEY is not set"},
		{"empty", "k1", map[string]string{"SHARDFLOW_TOKEN_KEY": ""}, "SHARDFLOW_TOKEN_KEY is not set"},
		{"short", "k1", map[string]string{"SHARDFLOW_TOKEN_KEY": "short-secret"}, "the key variable SHARDFLOW_TOKEN_KEY: new tokenizer k1: tokenizer key is shorter than 32"},
		{"bad key id", "K_1", map[string]string{"SHARDFLOW_TOKEN_KEY": key}, "key id"},
	} {
		cfg := cfg
		cfg.KeyID = c.keyID
		_, err := FromEnv(cfg, c.env)
		if exitcode.Of(err) != exitcode.Usage || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: FromEnv = %v (exit %d), want exit 2 and %q", c.name, err, exitcode.Of(err), c.want)
			continue
		}
		if v := c.env["SHARDFLOW_TOKEN_KEY"]; v != "" && strings.Contains(err.Error(), v) {
			t.Errorf("%s: the key is in the error: %v", c.name, err)
		}
	}
}
