package tokenize

import (
	"fmt"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/registry"
)

// FromEnv returns the tokenizer cfg configures (shards.yaml tokenizer: key_id, and
// key.env, the variable that holds the key), its key read from env, the process
// environment main passes. A variable not set, a key too short or a bad key id is an
// exitcode.Usage error naming the variable, never the key.
func FromEnv(cfg registry.Tokenizer, env map[string]string) (*Tokenizer, error) {
	key := env[cfg.Key.Env]
	if key == "" {
		return nil, exitcode.Errorf(exitcode.Usage, "tokenizer: the key variable %s is not set", cfg.Key.Env)
	}
	t, err := New(cfg.KeyID, []byte(key))
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Usage, fmt.Errorf("tokenizer: the key variable %s: %w", cfg.Key.Env, err))
	}
	return t, nil
}
