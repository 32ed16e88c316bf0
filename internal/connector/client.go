package connector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// ErrNotFound is returned for a connector the Connect cluster does not have.
var ErrNotFound = errors.New("connector not found")

// Client talks to the Kafka Connect REST API. Requests are retried with backoff on
// connection errors, 5xx and 409 (the worker answers 409 while its group rebalances).
type Client struct {
	base string
	http *retryablehttp.Client
}

// NewClient returns a client of the Connect REST API at baseURL
// (e.g. http://127.0.0.1:18083). log may be nil.
func NewClient(baseURL string, log *slog.Logger) *Client {
	h := retryablehttp.NewClient()
	h.RetryMax = 8
	h.RetryWaitMin = 250 * time.Millisecond
	h.RetryWaitMax = 5 * time.Second
	h.HTTPClient.Timeout = 30 * time.Second
	h.Logger = nil
	if log != nil {
		h.Logger = retryLogger{log}
	}
	h.CheckRetry = func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if resp != nil && resp.StatusCode == http.StatusConflict {
			return ctx.Err() == nil, nil
		}
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	h.ErrorHandler = retryablehttp.PassthroughErrorHandler
	return &Client{base: strings.TrimRight(baseURL, "/"), http: h}
}

// NewProbe returns a client that tries each request once: for a reader that runs again
// soon and must answer within its own deadline (the exporter's scrapes), where an
// unreachable worker is reported at once rather than retried for seconds.
func NewProbe(baseURL string) *Client {
	c := NewClient(baseURL, nil)
	c.http.RetryMax = 0
	return c
}

type retryLogger struct{ l *slog.Logger }

func (r retryLogger) Error(msg string, kv ...any) { r.l.Warn(msg, kv...) }
func (r retryLogger) Info(msg string, kv ...any)  {}
func (r retryLogger) Debug(msg string, kv ...any) {}
func (r retryLogger) Warn(msg string, kv ...any)  { r.l.Warn(msg, kv...) }

// APIError is a non-2xx answer of the Connect REST API.
type APIError struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("connect %s %s: %d %s", e.Method, e.Path, e.Status, e.Message)
}

func (c *Client) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("connect %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("connect %s %s: %w", method, path, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("connect %s %s: %w", method, path, ErrNotFound)
	}
	if resp.StatusCode/100 != 2 {
		var m struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(data, &m)
		if m.Message == "" {
			m.Message = strings.TrimSpace(string(data))
		}
		return &APIError{Method: method, Path: path, Status: resp.StatusCode, Message: m.Message}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("connect %s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// Connectors lists the connector names of the cluster.
func (c *Client) Connectors(ctx context.Context) ([]string, error) {
	var names []string
	err := c.do(ctx, http.MethodGet, "/connectors", nil, &names)
	return names, err
}

// Config returns a connector's stored config (references unresolved), or ErrNotFound.
func (c *Client) Config(ctx context.Context, name string) (Config, error) {
	var cfg Config
	err := c.do(ctx, http.MethodGet, "/connectors/"+url.PathEscape(name)+"/config", nil, &cfg)
	return cfg, err
}

// PutConfig creates the connector or replaces its config. Putting the config the
// connector already has changes nothing.
func (c *Client) PutConfig(ctx context.Context, name string, cfg Config) error {
	return c.do(ctx, http.MethodPut, "/connectors/"+url.PathEscape(name)+"/config", cfg, nil)
}

// Pause stops a connector's tasks from polling (its slot and offsets stay); Resume
// lets them go on from where they were.
func (c *Client) Pause(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPut, "/connectors/"+url.PathEscape(name)+"/pause", nil, nil)
}

// Resume undoes Pause.
func (c *Client) Resume(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPut, "/connectors/"+url.PathEscape(name)+"/resume", nil, nil)
}

// Restart restarts a connector and its failed tasks.
func (c *Client) Restart(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, "/connectors/"+url.PathEscape(name)+"/restart?includeTasks=true&onlyFailed=true", nil, nil)
}

// State is the state of a connector or task: UNASSIGNED, RUNNING, PAUSED, FAILED,
// RESTARTING or STOPPED.
type State struct {
	State    string `json:"state"`
	WorkerID string `json:"worker_id"`
	Trace    string `json:"trace,omitempty"`
}

// TaskState is one task's state.
type TaskState struct {
	ID int `json:"id"`
	State
}

// Status is GET /connectors/<name>/status.
type Status struct {
	Name      string      `json:"name"`
	Connector State       `json:"connector"`
	Tasks     []TaskState `json:"tasks"`
}

// Running reports whether the connector and all its tasks (at least one) run.
func (s Status) Running() bool {
	if s.Connector.State != "RUNNING" || len(s.Tasks) == 0 {
		return false
	}
	for _, t := range s.Tasks {
		if t.State.State != "RUNNING" {
			return false
		}
	}
	return true
}

// Summary is "RUNNING, tasks 0:RUNNING" style text (no traces).
func (s Status) Summary() string {
	var ts []string
	for _, t := range s.Tasks {
		ts = append(ts, fmt.Sprintf("%d:%s", t.ID, t.State.State))
	}
	if len(ts) == 0 {
		ts = []string{"none"}
	}
	return fmt.Sprintf("%s, tasks %s", s.Connector.State, strings.Join(ts, " "))
}

// Status returns a connector's and its tasks' states, or ErrNotFound.
func (c *Client) Status(ctx context.Context, name string) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/connectors/"+url.PathEscape(name)+"/status", nil, &st)
	return st, err
}

// Plugin is one entry of GET /connector-plugins.
type Plugin struct {
	Class   string `json:"class"`
	Type    string `json:"type"`
	Version string `json:"version"`
}

// Plugins lists the connector plugins the worker has.
func (c *Client) Plugins(ctx context.Context) ([]Plugin, error) {
	var ps []Plugin
	err := c.do(ctx, http.MethodGet, "/connector-plugins", nil, &ps)
	return ps, err
}
