// Package airflow is a small client of the Airflow 3 REST API (/api/v2) for the few
// endpoints shardctl uses: trigger a DAG run with conf, read runs and their task
// instances, clear failed task instances, pause and unpause a DAG. Endpoint shapes are
// those of the OpenAPI document in the installed apache-airflow package
// (airflow/api_fastapi/core_api/openapi/v2-rest-api-generated.yaml).
//
// Authentication: a bearer token, given, or obtained from POST /auth/token with a user
// name and password (the simple auth manager) and renewed once on a 401. Requests are
// retried by go-retryablehttp on connection errors and 5xx, never on 4xx.
package airflow

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
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// States of runs and task instances, as the API spells them.
const (
	StateQueued         = "queued"
	StateRunning        = "running"
	StateSuccess        = "success"
	StateFailed         = "failed"
	StateUpstreamFailed = "upstream_failed"
	StateSkipped        = "skipped"
	StateUpForRetry     = "up_for_retry"
)

// Sentinel errors.
var (
	ErrUnauthorized = errors.New("airflow: unauthorized (check the token or user/password)")
	ErrNotFound     = errors.New("airflow: not found")
)

// APIError is a non-2xx answer of the API; Detail is the server's message.
type APIError struct {
	Method, Path string
	Status       int
	Detail       string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("airflow %s %s: %d %s", e.Method, e.Path, e.Status, e.Detail)
}

// Unwrap lets errors.Is match ErrUnauthorized and ErrNotFound.
func (e *APIError) Unwrap() error {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrUnauthorized
	case http.StatusNotFound:
		return ErrNotFound
	}
	return nil
}

// Retryable reports whether a later attempt may succeed (the server failed, not the request).
func (e *APIError) Retryable() bool { return e.Status >= 500 || e.Status == http.StatusTooManyRequests }

// Config says where the API is and how to authenticate. Either Token, or Username and
// Password (exchanged for a token at POST /auth/token).
type Config struct {
	URL      string // e.g. http://127.0.0.1:18080 (no /api/v2)
	Token    string
	Username string
	Password string
	// RetryMax is how often a request is retried on a connection error or 5xx (default 4).
	RetryMax int
	Logger   *slog.Logger
}

// Client talks to one Airflow API server. It is safe for concurrent use.
type Client struct {
	base *url.URL
	http *retryablehttp.Client
	cfg  Config

	mu    sync.Mutex
	token string
}

// New returns a client for cfg; it does not contact the server.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("airflow client: %q is not an http(s) URL", cfg.URL)
	}
	if cfg.Token == "" && (cfg.Username == "" || cfg.Password == "") {
		return nil, errors.New("airflow client: give a token, or a user name and password for /auth/token")
	}
	h := retryablehttp.NewClient()
	h.RetryMax = 4
	if cfg.RetryMax > 0 {
		h.RetryMax = cfg.RetryMax
	}
	h.RetryWaitMin, h.RetryWaitMax = 200*time.Millisecond, 3*time.Second
	h.HTTPClient.Timeout = 30 * time.Second
	h.Logger = nil
	if cfg.Logger != nil {
		h.Logger = cfg.Logger
	}
	return &Client{base: u, http: h, cfg: cfg, token: cfg.Token}, nil
}

// login exchanges the user name and password for a token.
func (c *Client) login(ctx context.Context) (string, error) {
	body, _ := json.Marshal(map[string]string{"username": c.cfg.Username, "password": c.cfg.Password})
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := c.send(ctx, http.MethodPost, "/auth/token", nil, body, "", &out); err != nil {
		return "", fmt.Errorf("airflow login as %s: %w", c.cfg.Username, err)
	}
	if out.AccessToken == "" {
		return "", fmt.Errorf("airflow login as %s: no access_token in the answer", c.cfg.Username)
	}
	return out.AccessToken, nil
}

func (c *Client) bearer(ctx context.Context, renew bool) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && !renew {
		return c.token, nil
	}
	if c.cfg.Username == "" {
		return c.token, nil // a given token cannot be renewed
	}
	t, err := c.login(ctx)
	if err != nil {
		return "", err
	}
	c.token = t
	return t, nil
}

// do calls the API with a bearer token, logging in first or again after a 401.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("airflow %s %s: %w", method, path, err)
		}
	}
	tok, err := c.bearer(ctx, false)
	if err != nil {
		return err
	}
	err = c.send(ctx, method, path, query, body, tok, out)
	if errors.Is(err, ErrUnauthorized) && c.cfg.Username != "" {
		if tok, err = c.bearer(ctx, true); err != nil {
			return err
		}
		err = c.send(ctx, method, path, query, body, tok, out)
	}
	return err
}

func (c *Client) send(ctx context.Context, method, path string, query url.Values, body []byte, token string, out any) error {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("airflow %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("airflow %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("airflow %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return &APIError{Method: method, Path: path, Status: resp.StatusCode, Detail: detail(data)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("airflow %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// detail extracts FastAPI's {"detail": ...} message, or a prefix of the body.
func detail(body []byte) string {
	var d struct {
		Detail json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &d) == nil && len(d.Detail) > 0 {
		var s string
		if json.Unmarshal(d.Detail, &s) == nil {
			return s
		}
		return string(d.Detail)
	}
	if len(body) > 300 {
		body = body[:300]
	}
	return strings.TrimSpace(string(body))
}

// DAG is the part of a DAG the client reads.
type DAG struct {
	DAGID    string `json:"dag_id"`
	IsPaused bool   `json:"is_paused"`
}

// DAGRun is one run of a DAG.
type DAGRun struct {
	DAGID             string         `json:"dag_id"`
	RunID             string         `json:"dag_run_id"`
	State             string         `json:"state"`
	RunType           string         `json:"run_type"`
	LogicalDate       *time.Time     `json:"logical_date"`
	DataIntervalStart *time.Time     `json:"data_interval_start"`
	DataIntervalEnd   *time.Time     `json:"data_interval_end"`
	StartDate         *time.Time     `json:"start_date"`
	EndDate           *time.Time     `json:"end_date"`
	Conf              map[string]any `json:"conf"`
}

// TaskInstance is one task's try in a run (MapIndex -1 unless the task is mapped).
type TaskInstance struct {
	TaskID    string     `json:"task_id"`
	RunID     string     `json:"dag_run_id"`
	MapIndex  int        `json:"map_index"`
	State     string     `json:"state"`
	TryNumber int        `json:"try_number"`
	StartDate *time.Time `json:"start_date"`
	EndDate   *time.Time `json:"end_date"`
}

// Trigger asks for a run. A zero Trigger.LogicalDate gives a run without logical date;
// DataIntervalStart/End, when set, are the run's data interval (the window).
type Trigger struct {
	RunID             string
	LogicalDate       time.Time
	DataIntervalStart time.Time
	DataIntervalEnd   time.Time
	Conf              map[string]any
	Note              string
}

// GetJSON reads any API path as the client's user and decodes the answer into out: the
// routes this client has no method for (the UI's deadline routes, e.g.
// /ui/dags/{dag_id}/dagRuns/{run_id}/deadlines, read by the e2e test).
func (c *Client) GetJSON(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, nil, out)
}

// GetDAG reads a DAG (is it paused?).
func (c *Client) GetDAG(ctx context.Context, dagID string) (DAG, error) {
	var d DAG
	err := c.do(ctx, http.MethodGet, "/api/v2/dags/"+url.PathEscape(dagID), nil, nil, &d)
	return d, err
}

// SetPaused pauses (true) or unpauses a DAG and returns its new state.
func (c *Client) SetPaused(ctx context.Context, dagID string, paused bool) (DAG, error) {
	var d DAG
	err := c.do(ctx, http.MethodPatch, "/api/v2/dags/"+url.PathEscape(dagID), nil, map[string]bool{"is_paused": paused}, &d)
	return d, err
}

// TriggerRun creates a run of dagID (POST /api/v2/dags/{dag_id}/dagRuns).
func (c *Client) TriggerRun(ctx context.Context, dagID string, tr Trigger) (DAGRun, error) {
	body := map[string]any{"logical_date": nil}
	if !tr.LogicalDate.IsZero() {
		body["logical_date"] = tr.LogicalDate.UTC().Format(time.RFC3339)
	}
	if !tr.DataIntervalStart.IsZero() {
		body["data_interval_start"] = tr.DataIntervalStart.UTC().Format(time.RFC3339)
		body["data_interval_end"] = tr.DataIntervalEnd.UTC().Format(time.RFC3339)
	}
	if tr.RunID != "" {
		body["dag_run_id"] = tr.RunID
	}
	if tr.Conf != nil {
		body["conf"] = tr.Conf
	}
	if tr.Note != "" {
		body["note"] = tr.Note
	}
	var r DAGRun
	err := c.do(ctx, http.MethodPost, "/api/v2/dags/"+url.PathEscape(dagID)+"/dagRuns", nil, body, &r)
	return r, err
}

// GetRun reads one run.
func (c *Client) GetRun(ctx context.Context, dagID, runID string) (DAGRun, error) {
	var r DAGRun
	err := c.do(ctx, http.MethodGet, "/api/v2/dags/"+url.PathEscape(dagID)+"/dagRuns/"+url.PathEscape(runID), nil, nil, &r)
	return r, err
}

// LatestRuns returns up to limit runs of dagID, newest (by run_after) first.
func (c *Client) LatestRuns(ctx context.Context, dagID string, limit int) ([]DAGRun, error) {
	var out struct {
		Runs []DAGRun `json:"dag_runs"`
	}
	q := url.Values{"limit": {fmt.Sprint(limit)}, "order_by": {"-run_after"}}
	err := c.do(ctx, http.MethodGet, "/api/v2/dags/"+url.PathEscape(dagID)+"/dagRuns", q, nil, &out)
	return out.Runs, err
}

// TaskInstances lists every task instance of a run (mapped ones once per map index).
func (c *Client) TaskInstances(ctx context.Context, dagID, runID string) ([]TaskInstance, error) {
	var all []TaskInstance
	const page = 100
	for offset := 0; ; offset += page {
		var out struct {
			TIs   []TaskInstance `json:"task_instances"`
			Total *int           `json:"total_entries"`
		}
		q := url.Values{"limit": {fmt.Sprint(page)}, "offset": {fmt.Sprint(offset)}}
		p := "/api/v2/dags/" + url.PathEscape(dagID) + "/dagRuns/" + url.PathEscape(runID) + "/taskInstances"
		if err := c.do(ctx, http.MethodGet, p, q, nil, &out); err != nil {
			return nil, err
		}
		all = append(all, out.TIs...)
		if len(out.TIs) < page {
			return all, nil
		}
	}
}

// Clear asks to clear task instances of one run.
type Clear struct {
	RunID   string
	TaskIDs []string
	// OnlyFailed clears only failed and upstream_failed instances.
	OnlyFailed bool
	// IncludeDownstream also clears what depends on TaskIDs (filtered by OnlyFailed too).
	IncludeDownstream bool
	DryRun            bool
	Note              string
}

// ClearTaskInstances clears task instances (POST /api/v2/dags/{dag_id}/clearTaskInstances)
// and returns the ones cleared (or, with DryRun, the ones that would be). The run goes
// back to queued so the scheduler runs them again.
func (c *Client) ClearTaskInstances(ctx context.Context, dagID string, cl Clear) ([]TaskInstance, error) {
	if cl.RunID == "" || len(cl.TaskIDs) == 0 {
		return nil, errors.New("airflow clear: a run id and at least one task id are required")
	}
	body := map[string]any{
		"dag_run_id":         cl.RunID,
		"task_ids":           cl.TaskIDs,
		"only_failed":        cl.OnlyFailed,
		"include_downstream": cl.IncludeDownstream,
		"include_upstream":   false,
		"include_future":     false,
		"include_past":       false,
		"reset_dag_runs":     true,
		"dry_run":            cl.DryRun,
	}
	if cl.Note != "" {
		body["note"] = cl.Note
	}
	var out struct {
		TIs []TaskInstance `json:"task_instances"`
	}
	err := c.do(ctx, http.MethodPost, "/api/v2/dags/"+url.PathEscape(dagID)+"/clearTaskInstances", nil, body, &out)
	return out.TIs, err
}

// WaitRun polls a run until it is in one of the final states (success, failed) or ctx
// ends, and returns it.
func (c *Client) WaitRun(ctx context.Context, dagID, runID string, every time.Duration) (DAGRun, error) {
	for {
		r, err := c.GetRun(ctx, dagID, runID)
		if err != nil {
			return r, err
		}
		if r.State == StateSuccess || r.State == StateFailed {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("airflow wait for run %s of %s (state %s): %w", runID, dagID, r.State, ctx.Err())
		case <-time.After(every):
		}
	}
}
