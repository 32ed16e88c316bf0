// Package s3 is the object store in an S3 bucket (kind: s3 in shards.yaml), on
// aws-sdk-go-v2: AWS S3 in production, any S3-API server (versitygw on loopback in the
// tests) through Config.Endpoint.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/shopsphere/shardflow/internal/objstore"
)

// Defaults of Config.
const (
	DefaultPartSize    = 8 << 20 // a Put buffers (Concurrency+1) parts: 40 MiB, objects up to 80 GB
	DefaultConcurrency = 4
)

// Config says where the store is and how to reach it.
type Config struct {
	Bucket string
	// Prefix is prepended to every key ("shardflow" stores landing/... as
	// shardflow/landing/...); "" stores keys at the top of the bucket.
	Prefix string
	Region string
	// Endpoint is a non-AWS endpoint (e.g. http://127.0.0.1:7070 for a local server);
	// it turns on path-style addressing. "" means AWS's endpoint for Region.
	Endpoint    string
	Credentials Credentials

	PartSize     int64 // bytes per multipart part (at least 5 MiB); 0 means DefaultPartSize
	Concurrency  int   // parts uploaded at once per Put; 0 means DefaultConcurrency
	ListPageSize int32 // keys per ListObjectsV2 page; 0 means the server's (1000 on S3)
}

// Credentials are static keys, or nothing: with AccessKeyID empty the SDK's default
// chain finds them (shared config and Profile, web identity / IRSA, ECS and EKS
// container credentials, EC2 instance metadata), refreshing temporary ones. main
// fills it (internal/objstore/backend.CredentialsFromEnv); nothing here reads the
// process environment except that chain.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Profile         string
}

// Validate names the first missing or inconsistent field.
func (c Config) Validate() error {
	switch {
	case c.Bucket == "":
		return errors.New("s3 object store: bucket is required")
	case c.Region == "":
		return errors.New("s3 object store: region is required")
	case c.Credentials.AccessKeyID != "" && c.Credentials.SecretAccessKey == "":
		return errors.New("s3 object store: an access key id without its secret access key")
	case c.Credentials.AccessKeyID == "" && c.Credentials.SecretAccessKey != "":
		return errors.New("s3 object store: a secret access key without its access key id")
	case c.PartSize != 0 && c.PartSize < manager.MinUploadPartSize:
		return fmt.Errorf("s3 object store: part size %d is below S3's minimum of %d", c.PartSize, manager.MinUploadPartSize)
	case strings.HasPrefix(c.Prefix, "/") || strings.Contains(c.Prefix, "//"):
		return fmt.Errorf("s3 object store: prefix %q: want a relative path", c.Prefix)
	}
	return nil
}

// Store is an objstore.Store in one bucket under one prefix.
//
// Put goes through the SDK's upload manager: bodies up to one part are one PutObject
// (the part is buffered before the request, so a reader failing midway sends
// nothing); larger ones are a multipart upload of PartSize parts, which S3 makes
// visible only on CompleteMultipartUpload; a failure aborts the upload (also when the
// caller's context ended), so neither leaves a partial object.
type Store struct {
	client   *awss3.Client
	uploader *manager.Uploader
	bucket   string
	prefix   string // "" or ending in "/"
	pageSize int32
}

var _ objstore.Store = (*Store)(nil)

// Open returns the store of cfg. It makes no request: a wrong bucket or missing
// permission shows on the first operation.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var awsCfg aws.Config
	if c := cfg.Credentials; c.AccessKeyID != "" {
		awsCfg = aws.Config{
			Region:      cfg.Region,
			Credentials: credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
		}
	} else {
		opts := []func(*config.LoadOptions) error{config.WithRegion(cfg.Region)}
		if c.Profile != "" {
			opts = append(opts, config.WithSharedConfigProfile(c.Profile))
		}
		var err error
		if awsCfg, err = config.LoadDefaultConfig(ctx, opts...); err != nil {
			return nil, fmt.Errorf("s3 object store: load aws config: %w", err)
		}
	}
	client := awss3.NewFromConfig(awsCfg, func(o *awss3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			o.UsePathStyle = true
		}
	})
	part, conc := cfg.PartSize, cfg.Concurrency
	if part == 0 {
		part = DefaultPartSize
	}
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	up := manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize, u.Concurrency = part, conc
		u.LeavePartsOnError = true // Put aborts with a context of its own
	})
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &Store{client: client, uploader: up, bucket: cfg.Bucket, prefix: prefix, pageSize: cfg.ListPageSize}, nil
}

// Put stores r under key (see objstore.Store).
func (s *Store) Put(ctx context.Context, key string, r io.Reader) error {
	if err := objstore.CheckKey(key); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	_, err := s.uploader.Upload(ctx, &awss3.PutObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key), Body: r})
	if err == nil {
		return nil
	}
	var mu manager.MultiUploadFailure
	if errors.As(err, &mu) && mu.UploadID() != "" {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, aerr := s.client.AbortMultipartUpload(actx, &awss3.AbortMultipartUploadInput{
			Bucket: &s.bucket, Key: aws.String(s.prefix + key), UploadId: aws.String(mu.UploadID()),
		}); aerr != nil {
			// Not visible as an object either way; a bucket lifecycle rule
			// (AbortIncompleteMultipartUpload) reclaims the parts.
			return fmt.Errorf("%w (abort upload %s: %v)", wrap("put", key, err), mu.UploadID(), aerr)
		}
	}
	return wrap("put", key, err)
}

// Create stores r under key unless an object is there (see objstore.Store): a
// PutObject with If-None-Match: * (S3 conditional writes), which S3 answers 412
// PreconditionFailed when the key exists, or 409 ConditionalRequestConflict while
// another conditional write of the key is in flight (retryable).
func (s *Store) Create(ctx context.Context, key string, r io.Reader) error {
	if err := objstore.CheckKey(key); err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	body, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	_, err = s.client.PutObject(ctx, &awss3.PutObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key),
		Body: bytes.NewReader(body), IfNoneMatch: aws.String("*")})
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "PreconditionFailed" {
		return fmt.Errorf("create %s: %w", key, objstore.ErrExists)
	}
	if err != nil {
		return wrap("create", key, err)
	}
	return nil
}

// Get opens key (see objstore.Store).
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := objstore.CheckKey(key); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key)})
	if notFound(err) {
		return nil, fmt.Errorf("get %s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return nil, wrap("get", key, err)
	}
	return out.Body, nil
}

// List returns the keys under prefix, sorted, through every page (see objstore.Store).
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	in := &awss3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.prefix + prefix)}
	if s.pageSize > 0 {
		in.MaxKeys = aws.Int32(s.pageSize)
	}
	var out []string
	for p := awss3.NewListObjectsV2Paginator(s.client, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, wrap("list", prefix, err)
		}
		for _, o := range page.Contents {
			if k, ok := strings.CutPrefix(aws.ToString(o.Key), s.prefix); ok {
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// Delete removes key; an absent key is not an error (see objstore.Store).
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := objstore.CheckKey(key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	_, err := s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key)})
	if err != nil && !notFound(err) {
		return wrap("delete", key, err)
	}
	return nil
}

// wrap names the operation and key of err and marks the errors retrying cannot fix
// (objstore.ErrDenied).
func wrap(op, key string, err error) error {
	if denied(err) {
		return fmt.Errorf("%s %s: %w: %w", op, key, objstore.ErrDenied, err)
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

// denied reports an S3 answer that no retry changes: refused credentials or
// permissions, or a bucket that does not exist.
func denied(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch",
		"NoSuchBucket", "InvalidBucketName", "AccountProblem", "InvalidObjectState":
		return true
	}
	return false
}

// notFound reports an absent object: NoSuchKey, or a bare 404 (HEAD-style answers).
func notFound(err error) bool {
	if err == nil {
		return false
	}
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	return false
}
