// Package backend opens the object store an environment of shards.yaml names
// (environments.<name>.object_store): the directory store for kind dir, S3 for kind s3.
// The task mains call it; tests of the mains run it against a directory and versitygw.
package backend

import (
	"context"
	"fmt"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/objstore"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/objstore/s3"
	"github.com/shopsphere/shardflow/internal/registry"
)

// Open returns the store of cfg. creds are used by kind s3 only (empty: the SDK's
// default credential chain). A dir store's path is relative to the working directory.
// Opening reaches no server, so every error is a setting missing or wrong, and carries
// exitcode.Usage (as warehouse/backend.Open's do); the store's own calls classify their
// failures (objstore.Classify).
func Open(ctx context.Context, cfg registry.ObjectStore, creds s3.Credentials) (objstore.Store, error) {
	switch cfg.Kind {
	case "dir":
		if cfg.Path == "" {
			return nil, exitcode.Errorf(exitcode.Usage, "open object store: kind dir needs a path")
		}
		return dir.Store{Root: cfg.Path}, nil
	case "s3":
		st, err := s3.Open(ctx, s3.Config{Bucket: cfg.Bucket, Prefix: cfg.Prefix, Region: cfg.Region, Endpoint: cfg.Endpoint, Credentials: creds})
		if err != nil {
			return nil, exitcode.Wrap(exitcode.Usage, fmt.Errorf("open object store: %w", err))
		}
		return st, nil
	}
	return nil, exitcode.Errorf(exitcode.Usage, "open object store: kind %q is not one of dir, s3", cfg.Kind)
}

// CredentialsFromEnv picks the S3 credentials out of a process environment (main
// passes its own): AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN for
// static keys, AWS_PROFILE for a shared-config profile. Without them the SDK's
// default chain (web identity / IRSA, container and instance credentials) applies.
func CredentialsFromEnv(env map[string]string) s3.Credentials {
	return s3.Credentials{
		AccessKeyID:     env["AWS_ACCESS_KEY_ID"],
		SecretAccessKey: env["AWS_SECRET_ACCESS_KEY"],
		SessionToken:    env["AWS_SESSION_TOKEN"],
		Profile:         env["AWS_PROFILE"],
	}
}
