// Package objstoretest is the contract test of objstore.Store (its doc comment), run by
// every backend's tests against a real instance: the directory in a temp dir, S3 on
// versitygw.
package objstoretest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/shopsphere/shardflow/internal/objstore"
)

// LargeBytes is the size of the contract's large objects: more than two parts of the
// S3 backend's smallest part size (5 MiB), so a multipart upload runs.
const LargeBytes = 12 << 20

// Run runs the contract. newStore returns a fresh, empty store for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) objstore.Store) {
	ctx := context.Background()
	const key = "landing/orders/source=batch/shard=s00/dt=2026-03-10/orders__s00__20260310T1000Z__20260310T1100Z.parquet"

	t.Run("PutGetOverwrite", func(t *testing.T) {
		s := newStore(t)
		put(t, s, key, "v1")
		if got := get(t, s, key); got != "v1" {
			t.Fatalf("Get = %q, want v1", got)
		}
		put(t, s, key, "v2 is longer")
		if got := get(t, s, key); got != "v2 is longer" {
			t.Fatalf("after overwrite Get = %q", got)
		}
		put(t, s, "empty", "")
		if got := get(t, s, "empty"); got != "" {
			t.Fatalf("empty object = %q", got)
		}
	})

	t.Run("FailedPutKeepsPrevious", func(t *testing.T) {
		s := newStore(t)
		put(t, s, key, "v1")
		for _, n := range []int{7, LargeBytes} {
			if err := s.Put(ctx, key, failingReader(n)); err == nil {
				t.Fatalf("Put with a reader failing after %d bytes succeeded", n)
			}
			if got := get(t, s, key); got != "v1" {
				t.Fatalf("after a Put failing at %d bytes: %d bytes, want the previous object", n, len(got))
			}
			if err := s.Put(ctx, "absent", failingReader(n)); err == nil {
				t.Fatal("Put with a failing reader succeeded")
			}
			assertAbsent(t, s, "absent")
		}
		if keys := list(t, s, ""); !slices.Equal(keys, []string{key}) {
			t.Fatalf("List after failed Puts = %v, want only %s", keys, key)
		}
	})

	t.Run("CancelledPutKeepsPrevious", func(t *testing.T) {
		s := newStore(t)
		put(t, s, key, "v1")
		cctx, cancel := context.WithCancel(ctx)
		r := &cancellingReader{cancel: cancel, after: LargeBytes / 2, total: LargeBytes}
		if err := s.Put(cctx, key, r); err == nil {
			t.Fatal("Put whose context was cancelled succeeded")
		}
		if got := get(t, s, key); got != "v1" {
			t.Fatalf("after a cancelled Put: %d bytes, want the previous object", len(got))
		}
	})

	t.Run("LargeStreamingPut", func(t *testing.T) {
		s := newStore(t)
		src := &randReader{n: LargeBytes + 12345, rng: rand.New(rand.NewPCG(1, 2))}
		h := sha256.New()
		if err := s.Put(ctx, key, io.TeeReader(src, h)); err != nil {
			t.Fatal(err)
		}
		rc, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		g := sha256.New()
		n, err := io.Copy(g, rc)
		if err != nil {
			t.Fatal(err)
		}
		if n != LargeBytes+12345 || !bytes.Equal(g.Sum(nil), h.Sum(nil)) {
			t.Fatalf("read back %d bytes, sha differs: %v", n, !bytes.Equal(g.Sum(nil), h.Sum(nil)))
		}
	})

	t.Run("GetAbsent", func(t *testing.T) {
		s := newStore(t)
		assertAbsent(t, s, key)
		put(t, s, "a/b/c", "x")
		assertAbsent(t, s, "a/b") // only the prefix of a key
		assertAbsent(t, s, "a")
	})

	t.Run("List", func(t *testing.T) {
		s := newStore(t)
		want := []string{
			"landing/orders/source=batch/shard=s00/dt=2026-03-10/a.parquet",
			"landing/orders/source=batch/shard=s00/dt=2026-03-10/a.manifest.json",
			"landing/orders/source=batch/shard=s01/dt=2026-03-10/b.parquet",
			"landing/orders/source=cdc/shard=s00/dt=2026-03-11/c.parquet",
			"landing/orders.x/y", // a sibling that shares the string prefix "landing/orders"
			"landing/payments/source=batch/shard=s00/dt=2026-03-10/d.parquet",
		}
		for i := range 25 { // more than the S3 tests' page size
			want = append(want, fmt.Sprintf("landing/orders/source=batch/shard=s02/dt=2026-03-10/p%02d.parquet", i))
		}
		for _, k := range want {
			put(t, s, k, k)
		}
		slices.Sort(want)
		if got := list(t, s, ""); !slices.Equal(got, want) {
			t.Fatalf("List(\"\") =\n%v\nwant\n%v", got, want)
		}
		for _, prefix := range []string{"landing/orders/", "landing/orders", "landing/orders/source=batch/shard=s0", "landing/orders/source=batch/shard=s02/", "landing/pay", "landing/orders/source=cdc/shard=s00/dt=2026-03-11/c.parquet"} {
			var exp []string
			for _, k := range want {
				if strings.HasPrefix(k, prefix) {
					exp = append(exp, k)
				}
			}
			if got := list(t, s, prefix); !slices.Equal(got, exp) {
				t.Errorf("List(%q) =\n%v\nwant\n%v", prefix, got, exp)
			}
		}
		for _, prefix := range []string{"nothing/", "landing/orders/source=batch/shard=s99/", "landing/z"} {
			if got := list(t, s, prefix); len(got) != 0 {
				t.Errorf("List(%q) = %v, want none", prefix, got)
			}
		}
	})

	t.Run("DeleteIdempotent", func(t *testing.T) {
		s := newStore(t)
		put(t, s, key, "v1")
		put(t, s, key+".other", "v1")
		for i := range 2 {
			if err := s.Delete(ctx, key); err != nil {
				t.Fatalf("Delete #%d: %v", i+1, err)
			}
		}
		assertAbsent(t, s, key)
		if err := s.Delete(ctx, "never/was/here"); err != nil {
			t.Fatalf("Delete of an absent key: %v", err)
		}
		put(t, s, "p/q", "x")
		if err := s.Delete(ctx, "p"); err != nil { // only the prefix of a key
			t.Fatalf("Delete of a prefix: %v", err)
		}
		if got := list(t, s, ""); !slices.Equal(got, []string{key + ".other", "p/q"}) {
			t.Fatalf("List after Delete = %v", got)
		}
	})

	t.Run("InvalidKeys", func(t *testing.T) {
		s := newStore(t)
		for _, k := range []string{"", "/abs", "a/../b", "../b", "a//b", "a/", "./a", "a\\b", "a\nb", strings.Repeat("k", 1025)} {
			if err := s.Put(ctx, k, strings.NewReader("x")); !errors.Is(err, objstore.ErrInvalidKey) {
				t.Errorf("Put(%q) = %v, want ErrInvalidKey", k, err)
			}
			if _, err := s.Get(ctx, k); !errors.Is(err, objstore.ErrInvalidKey) {
				t.Errorf("Get(%q) = %v, want ErrInvalidKey", k, err)
			}
			if err := s.Delete(ctx, k); !errors.Is(err, objstore.ErrInvalidKey) {
				t.Errorf("Delete(%q) = %v, want ErrInvalidKey", k, err)
			}
		}
		if got := list(t, s, ""); len(got) != 0 {
			t.Fatalf("invalid keys stored: %v", got)
		}
	})

	t.Run("CreateOnce", func(t *testing.T) {
		s := newStore(t)
		if err := s.Create(ctx, key, strings.NewReader("first")); err != nil {
			t.Fatalf("Create of an absent key: %v", err)
		}
		if err := s.Create(ctx, key, strings.NewReader("second")); !errors.Is(err, objstore.ErrExists) {
			t.Fatalf("Create of an existing key = %v, want ErrExists", err)
		}
		if got := get(t, s, key); got != "first" {
			t.Fatalf("after a refused Create: %q, want the first object", got)
		}
		if err := s.Create(ctx, "a/../b", strings.NewReader("x")); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Fatalf("Create of an invalid key = %v, want ErrInvalidKey", err)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, key, strings.NewReader("after delete")); err != nil {
			t.Fatalf("Create after Delete: %v", err)
		}
		if keys := list(t, s, ""); !slices.Equal(keys, []string{key}) {
			t.Fatalf("List after Creates = %v, want only %s", keys, key)
		}
	})

	t.Run("ConcurrentCreates", func(t *testing.T) {
		// the store's compare-and-set: of writers racing to create one key, exactly one
		// wins, and the object is the winner's
		s := newStore(t)
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.Create(ctx, key, strings.NewReader(strings.Repeat(fmt.Sprint(i), 100)))
			}()
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("Creates %d and %d both succeeded", winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, objstore.ErrExists):
				t.Fatalf("Create %d: %v, want success or ErrExists", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no Create succeeded")
		}
		if got := get(t, s, key); got != strings.Repeat(fmt.Sprint(winner), 100) {
			t.Fatalf("object is not the winning Create's (%d): %.10q", winner, got)
		}
	})

	t.Run("ConcurrentPuts", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := range 8 {
			wg.Add(2)
			go func() { // same key: the last writer wins, whole
				defer wg.Done()
				errs <- s.Put(ctx, key, strings.NewReader(strings.Repeat(fmt.Sprint(i), 1000)))
			}()
			go func() {
				defer wg.Done()
				errs <- s.Put(ctx, fmt.Sprintf("c/%d", i), strings.NewReader(fmt.Sprint(i)))
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		got := get(t, s, key)
		if len(got) != 1000 || strings.Count(got, got[:1]) != 1000 {
			t.Fatalf("concurrent Puts of one key left a mixed object (%d bytes)", len(got))
		}
		for i := range 8 {
			if g := get(t, s, fmt.Sprintf("c/%d", i)); g != fmt.Sprint(i) {
				t.Errorf("c/%d = %q", i, g)
			}
		}
	})
}

func put(t *testing.T, s objstore.Store, key, v string) {
	t.Helper()
	if err := s.Put(context.Background(), key, strings.NewReader(v)); err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
}

func get(t *testing.T, s objstore.Store, key string) string {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%s): read: %v", key, err)
	}
	return string(b)
}

func list(t *testing.T, s objstore.Store, prefix string) []string {
	t.Helper()
	keys, err := s.List(context.Background(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	if !slices.IsSorted(keys) {
		t.Fatalf("List(%q) is not sorted: %v", prefix, keys)
	}
	return keys
}

func assertAbsent(t *testing.T, s objstore.Store, key string) {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err == nil {
		rc.Close()
		t.Fatalf("Get(%s) found an object, want fs.ErrNotExist", key)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Get(%s) = %v, want an error wrapping fs.ErrNotExist", key, err)
	}
	if !strings.Contains(err.Error(), key) {
		t.Fatalf("Get(%s) error %q does not name the key", key, err)
	}
}

// failingReader gives n bytes, then an error.
func failingReader(n int) io.Reader {
	return io.MultiReader(io.LimitReader(&randReader{n: int64(n), rng: rand.New(rand.NewPCG(3, 4))}, int64(n)), errReader{})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("source died") }

// randReader gives n pseudo-random bytes.
type randReader struct {
	n   int64
	rng *rand.Rand
}

func (r *randReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	for i := range p {
		p[i] = byte(r.rng.Uint32())
	}
	r.n -= int64(len(p))
	return len(p), nil
}

// cancellingReader cancels its context after `after` bytes and goes on giving bytes
// up to total, as a source that does not notice the cancellation would.
type cancellingReader struct {
	cancel       context.CancelFunc
	after, total int
	read         int
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	if r.read >= r.total {
		return 0, io.EOF
	}
	n := min(len(p), r.total-r.read)
	clear(p[:n])
	r.read += n
	if r.read >= r.after {
		r.cancel()
	}
	return n, nil
}
