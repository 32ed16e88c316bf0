package s3

import (
	"context"
	"errors"
	"fmt"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/shopsphere/shardflow/internal/objstore"
)

// ErrNotImplemented marks a bucket operation the S3-API server does not implement
// (versitygw answers 501 NotImplemented to the lifecycle API).
var ErrNotImplemented = errors.New("not implemented by this S3 server")

// Bucket is the store's bucket and Prefix its key prefix ("" or ending in "/").
func (s *Store) Bucket() string { return s.bucket }

// Prefix is prepended to every key of the store.
func (s *Store) Prefix() string { return s.prefix }

// Lifecycle returns the bucket's lifecycle rules; a bucket without a configuration has
// none (S3 answers NoSuchLifecycleConfiguration).
func (s *Store) Lifecycle(ctx context.Context) ([]types.LifecycleRule, error) {
	out, err := s.client.GetBucketLifecycleConfiguration(ctx, &awss3.GetBucketLifecycleConfigurationInput{Bucket: &s.bucket})
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchLifecycleConfiguration" {
		return nil, nil
	}
	if err != nil {
		return nil, lifecycleErr("get lifecycle of bucket "+s.bucket, err)
	}
	return out.Rules, nil
}

// PutLifecycle replaces the bucket's whole lifecycle configuration with rules (S3 has
// one configuration per bucket), with objects smaller than 128 KiB never transitioned
// (S3's default since September 2024, set explicitly so an account default cannot move
// manifests to an archive class).
func (s *Store) PutLifecycle(ctx context.Context, rules []types.LifecycleRule) error {
	_, err := s.client.PutBucketLifecycleConfiguration(ctx, &awss3.PutBucketLifecycleConfigurationInput{
		Bucket:                             &s.bucket,
		LifecycleConfiguration:             &types.BucketLifecycleConfiguration{Rules: rules},
		TransitionDefaultMinimumObjectSize: types.TransitionDefaultMinimumObjectSizeAllStorageClasses128k,
	})
	if err != nil {
		return lifecycleErr("put lifecycle of bucket "+s.bucket, err)
	}
	return nil
}

func lifecycleErr(op string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NotImplemented" {
		return fmt.Errorf("%s: %w: %w", op, ErrNotImplemented, err)
	}
	if denied(err) {
		return fmt.Errorf("%s: %w: %w", op, objstore.ErrDenied, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
