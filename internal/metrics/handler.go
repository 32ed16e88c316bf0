package metrics

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves ex: /metrics in Prometheus's text format (every scrape reads the
// sources anew, one scrape at a time) and /healthz (the process is up; it reads
// nothing). log receives the errors of encoding a scrape.
func Handler(ex *Exporter, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(ex)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	return mux
}
