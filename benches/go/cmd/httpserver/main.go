// httpserver is the Go twin of gort's examples/http_server.rs: net/http with the same routes,
// the same flags and defaults for http.Server's four timeouts, and http.TimeoutHandler over the
// routes. Used by benches/http_side_by_side.sh, loaded by cmd/httpload like gort's server.
//
// Routes: GET / (hello), GET /slow?ms=N (sleeps N ms, or less if the request's context ends),
// POST /echo (the body back), /quit (graceful shutdown).
//
// Usage: httpserver [-addr ADDR] [-read-header-timeout D] [-read-timeout D] [-write-timeout D]
// [-idle-timeout D] [-handler-timeout D] [-exit-after D]   (D as Go's time.ParseDuration; 0 is off)
//
// Prints "httpserver: listening on http://ADDR" once it accepts.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on (port 0 picks one)")
	readHeader := flag.Duration("read-header-timeout", 5*time.Second, "http.Server.ReadHeaderTimeout")
	read := flag.Duration("read-timeout", 30*time.Second, "http.Server.ReadTimeout")
	write := flag.Duration("write-timeout", 30*time.Second, "http.Server.WriteTimeout")
	idle := flag.Duration("idle-timeout", 120*time.Second, "http.Server.IdleTimeout")
	handlerTimeout := flag.Duration("handler-timeout", 10*time.Second, "http.TimeoutHandler's limit (0: none)")
	exitAfter := flag.Duration("exit-after", 0, "shut down after this long (0: never)")
	flag.Parse()

	quit := make(chan struct{}, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "hello from gort\n") // the same bytes as gort's server
	})
	mux.HandleFunc("GET /slow", slow)
	mux.HandleFunc("POST /echo", echo)
	mux.HandleFunc("/quit", func(w http.ResponseWriter, r *http.Request) {
		select {
		case quit <- struct{}{}:
		default:
		}
		io.WriteString(w, "shutting down\n")
	})
	var handler http.Handler = mux
	if *handlerTimeout > 0 {
		handler = http.TimeoutHandler(mux, *handlerTimeout, "timeout\n")
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: *readHeader,
		ReadTimeout:       *read,
		WriteTimeout:      *write,
		IdleTimeout:       *idle,
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpserver:", err)
		os.Exit(1)
	}
	fmt.Printf("httpserver: listening on http://%s\n", ln.Addr())
	go srv.Serve(ln)

	var exit <-chan time.Time // nil: never
	if *exitAfter > 0 {
		exit = time.After(*exitAfter)
	}
	why := "GET /quit"
	select {
	case <-quit:
	case <-exit:
		why = "-exit-after"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	fmt.Printf("httpserver: shut down (%s)\n", why)
}

func slow(w http.ResponseWriter, r *http.Request) {
	ms, err := strconv.ParseUint(r.URL.Query().Get("ms"), 10, 64)
	if err != nil {
		http.Error(w, "want /slow?ms=N", http.StatusBadRequest)
		return
	}
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
		fmt.Fprintf(w, "slept %d ms\n", ms)
	case <-r.Context().Done():
		http.Error(w, "cancelled", http.StatusServiceUnavailable)
	}
}

func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the read deadline passed or the client went away
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Write(body)
}
