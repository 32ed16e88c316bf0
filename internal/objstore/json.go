package objstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/shopsphere/shardflow/internal/exitcode"
)

// PutJSON stores v as indented JSON under key (control records: pauses, quarantines).
func PutJSON(ctx context.Context, s Store, key string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return Classify(s.Put(ctx, key, bytes.NewReader(append(b, '\n'))))
}

// GetJSON decodes the JSON object under key into v. It reports false, and no error,
// when there is no such object; a store error is classified, an object that does not
// decode is permanent.
func GetJSON(ctx context.Context, s Store, key string, v any) (bool, error) {
	rc, err := s.Get(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, Classify(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return false, Classify(fmt.Errorf("read %s: %w", key, err))
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, exitcode.Wrap(exitcode.Permanent, fmt.Errorf("%s: %w", key, err))
	}
	return true, nil
}
