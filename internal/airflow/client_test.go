package airflow

import (
	"errors"
	"net/http"
	"testing"
)

// The client against a real api-server is exercised by the Airflow end-to-end test
// (internal/shardctl, tag airflowe2e: trigger, task instances, clear, pause, login).
// These are the parts that need no server.

func TestNewNeedsURLAndCredentials(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "127.0.0.1:8080", Token: "t"},
		{URL: "http://127.0.0.1:8080"},
		{URL: "http://127.0.0.1:8080", Username: "u"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v): no error", cfg)
		}
	}
	if _, err := New(Config{URL: "http://127.0.0.1:8080/", Username: "u", Password: "p"}); err != nil {
		t.Error(err)
	}
}

func TestAPIErrorKinds(t *testing.T) {
	for _, c := range []struct {
		status    int
		is        error
		retryable bool
	}{
		{http.StatusUnauthorized, ErrUnauthorized, false},
		{http.StatusForbidden, ErrUnauthorized, false},
		{http.StatusNotFound, ErrNotFound, false},
		{http.StatusConflict, nil, false},
		{http.StatusServiceUnavailable, nil, true},
	} {
		err := error(&APIError{Method: "GET", Path: "/api/v2/dags/x", Status: c.status, Detail: "d"})
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%d: not %v", c.status, c.is)
		}
		var ae *APIError
		if !errors.As(err, &ae) || ae.Retryable() != c.retryable {
			t.Errorf("%d: retryable %v, want %v", c.status, ae.Retryable(), c.retryable)
		}
	}
	if got := detail([]byte(`{"detail":"The DagRun with dag_id: 'x' and run_id: 'r' already exists"}`)); got != "The DagRun with dag_id: 'x' and run_id: 'r' already exists" {
		t.Errorf("detail: %q", got)
	}
	if got := detail([]byte(`{"detail":[{"loc":["body","logical_date"],"msg":"Field required"}]}`)); got == "" {
		t.Error("detail of a validation error is empty")
	}
}
