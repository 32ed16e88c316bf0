// Package objstore is the seam between shardflow and the place files land: a directory
// (internal/objstore/dir, the embedded default) or an S3 bucket (internal/objstore/s3).
// internal/objstore/backend opens the one an environment of shards.yaml names, and
// internal/objstore/objstoretest is the contract test every backend passes.
package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/shopsphere/shardflow/internal/exitcode"
)

// Store holds objects under keys. Keys are relative to the store's root (a directory,
// or a bucket and prefix) and valid by CheckKey; the landing zone's layout is
// docs/contracts.md §5.
//
// Put stores everything read from r under key, replacing what was there. It is atomic:
// the object becomes visible, whole, only when r reaches io.EOF; if reading r fails, the
// context ends or the process dies, the previous object (or its absence) stays and no
// partial object is ever visible. Put streams: r may be larger than memory.
//
// Get opens the object under key. An absent key (also a key that is only the prefix of
// other keys) returns an error wrapping fs.ErrNotExist. The caller closes the reader.
//
// List returns every key that starts with prefix (a plain string prefix, "" for all),
// sorted bytewise, with no in-flight Put among them. It pages through any number of keys.
//
// Create stores r under key only if no object is there: of any number of concurrent
// Creates of one key (from any process), exactly one succeeds; the others, and a Create
// of a key that holds an object, return an error wrapping ErrExists and change nothing.
// It is atomic like Put. It is the store's one compare-and-set: what two writers must
// agree on (a CDC file's offset range, docs/cdc.md) is decided by who created it first.
// Create reads r whole into memory: it is for small objects.
//
// Delete removes key. It is idempotent: deleting an absent key succeeds.
//
// Every method may be called concurrently. Errors name the operation and the key.
type Store interface {
	Put(ctx context.Context, key string, r io.Reader) error
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	List(ctx context.Context, prefix string) ([]string, error)
	Create(ctx context.Context, key string, r io.Reader) error
	Delete(ctx context.Context, key string) error
}

// Sentinel errors.
var (
	// ErrInvalidKey marks a key CheckKey refuses.
	ErrInvalidKey = errors.New("invalid object key")
	// ErrDenied marks a request the store refused for a reason retrying cannot fix:
	// credentials or permissions (S3 AccessDenied, InvalidAccessKeyId,
	// SignatureDoesNotMatch; a directory the process may not write), or a bucket that
	// does not exist. Backends wrap such errors with it; every other error of a store
	// (unreachable, throttled, 5xx, timed out) may succeed when retried.
	ErrDenied = errors.New("object store refused the request")
	// ErrExists marks a Create of a key that already holds an object.
	ErrExists = errors.New("object already exists")
)

// Classify gives a store error its exit code (docs/contracts.md §8): permanent for
// ErrDenied and ErrInvalidKey, so Airflow does not retry a task that cannot succeed;
// retryable for anything else. A nil error stays nil.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrDenied) || errors.Is(err, ErrInvalidKey) {
		return exitcode.Wrap(exitcode.Permanent, err)
	}
	return exitcode.Wrap(exitcode.Retryable, err)
}

// CheckKey accepts a key that every backend can hold the same way: slash-separated,
// relative, no empty, "." or ".." segment, no backslash or control character, at most
// 1024 bytes (S3's limit).
func CheckKey(key string) error {
	if key == "" || len(key) > 1024 || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return fmt.Errorf("%w %q: want a relative path of at most 1024 bytes", ErrInvalidKey, key)
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("%w %q: backslash or control character", ErrInvalidKey, key)
		}
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w %q: empty, . or .. segment", ErrInvalidKey, key)
		}
	}
	return nil
}
