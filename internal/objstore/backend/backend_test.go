package backend_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/objstore/backend"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/objstore/s3"
	"github.com/shopsphere/shardflow/internal/objstore/s3/s3test"
	"github.com/shopsphere/shardflow/internal/registry"
)

func TestOpen(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	st, err := backend.Open(ctx, registry.ObjectStore{Kind: "dir", Path: root}, s3.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := st.(dir.Store); !ok || d.Root != root {
		t.Fatalf("kind dir opened %#v", st)
	}
	for _, c := range []struct {
		cfg  registry.ObjectStore
		cred s3.Credentials
		want string
	}{
		{registry.ObjectStore{Kind: "gcs"}, s3.Credentials{}, `kind "gcs"`},
		{registry.ObjectStore{Kind: "dir"}, s3.Credentials{}, "needs a path"},
		{registry.ObjectStore{Kind: "s3", Region: "us-east-1"}, s3.Credentials{}, "bucket is required"},
		{registry.ObjectStore{Kind: "s3", Bucket: "b", Region: "us-east-1"}, s3.Credentials{AccessKeyID: "AKIA"}, "without its secret"},
	} {
		if _, err := backend.Open(ctx, c.cfg, c.cred); err == nil || !strings.Contains(err.Error(), c.want) || exitcode.Of(err) != exitcode.Usage {
			t.Errorf("Open(%+v) = %v (exit %d), want %q and exit 2", c.cfg, err, exitcode.Of(err), c.want)
		}
	}
}

// an environment's s3 object store, as shards.yaml spells it, on a real S3 server
func TestOpenS3(t *testing.T) {
	srv := s3test.Start()
	defer srv.Stop()
	ctx := context.Background()
	bucket := srv.Bucket(t)
	env := map[string]string{"AWS_ACCESS_KEY_ID": s3test.AccessKey, "AWS_SECRET_ACCESS_KEY": s3test.SecretKey}
	st, err := backend.Open(ctx, registry.ObjectStore{Kind: "s3", Bucket: bucket, Prefix: "shardflow", Region: s3test.Region, Endpoint: srv.Endpoint},
		backend.CredentialsFromEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "landing/x", strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	rc, err := srv.Client().GetObject(ctx, getInput(bucket, "shardflow/landing/x"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc.Body)
	rc.Body.Close()
	if string(b) != "hello" {
		t.Fatalf("object under the prefix holds %q", b)
	}
}

func TestCredentialsFromEnv(t *testing.T) {
	got := backend.CredentialsFromEnv(map[string]string{"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t", "AWS_PROFILE": "p", "HOME": "/root"})
	if got != (s3.Credentials{AccessKeyID: "a", SecretAccessKey: "s", SessionToken: "t", Profile: "p"}) {
		t.Fatalf("CredentialsFromEnv = %+v", got)
	}
	if backend.CredentialsFromEnv(nil) != (s3.Credentials{}) {
		t.Fatal("an empty environment gives credentials")
	}
}

func getInput(bucket, key string) *awss3.GetObjectInput {
	return &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
}
