package dir

import (
	"errors"
	"io/fs"
	"syscall"
	"testing"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/objstore"
)

// No permission and a read-only file system are ErrDenied (exit 1, not retried); other
// failures stay retryable.
func TestWrapDenied(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EACCES, syscall.EPERM, syscall.EROFS} {
		err := wrap("put", "k", &fs.PathError{Op: "open", Path: "/x", Err: errno})
		if !errors.Is(err, objstore.ErrDenied) || exitcode.Of(objstore.Classify(err)) != exitcode.Permanent {
			t.Errorf("%v: %v, want ErrDenied", errno, err)
		}
	}
	err := wrap("put", "k", &fs.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC})
	if errors.Is(err, objstore.ErrDenied) || exitcode.Of(objstore.Classify(err)) != exitcode.Retryable {
		t.Errorf("ENOSPC: %v, want retryable", err)
	}
}
