// httpload is the HTTP load generator that is not gort: C keep-alive connections, each
// making N requests one after another (GET PATH, or POST PATH with a BODY-byte body), every
// reply read whole and checked for status 200. All connections are open before the first
// request. A failed request counts as an error, and its connection is dialled again.
//
// Usage: httpload -addr HOST:PORT [-c 50] [-n 1000] [-path /] [-body 0]
//
// Last line: httpload: conns=<C> reqs=<C*N> errors=<E> secs=<f.2> reqs_per_s=<f.0>
// p50_us=<f.1> p99_us=<f.1> (latency of one request, send to whole reply). Exits 1 if
// any request failed.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "server address")
	conns := flag.Int("c", 50, "connections, all open at once")
	n := flag.Int("n", 1000, "requests per connection")
	path := flag.String("path", "/", "request path")
	bodyLen := flag.Int("body", 0, "POST a body of this many bytes (0: GET)")
	flag.Parse()

	request := buildRequest(*addr, *path, *bodyLen)
	var (
		ready, done sync.WaitGroup
		start       = make(chan struct{})
		mu          sync.Mutex
		latencies   = make([]time.Duration, 0, *conns**n)
		errors      int
	)
	for i := 0; i < *conns; i++ {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			c := dial(*addr)
			ready.Done()
			<-start
			mine, failed := run(c, *addr, request, *n)
			mu.Lock()
			latencies = append(latencies, mine...)
			errors += failed
			mu.Unlock()
		}()
	}
	ready.Wait()
	began := time.Now()
	close(start)
	done.Wait()
	secs := time.Since(began).Seconds()

	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	fmt.Printf("httpload: conns=%d reqs=%d errors=%d secs=%.2f reqs_per_s=%.0f p50_us=%.1f p99_us=%.1f\n",
		*conns, *conns**n, errors, secs, float64(len(latencies))/secs,
		micros(percentile(latencies, 0.50)), micros(percentile(latencies, 0.99)))
	if errors > 0 {
		os.Exit(1)
	}
}

// buildRequest is the bytes of the one request every connection repeats.
func buildRequest(addr, path string, bodyLen int) []byte {
	if bodyLen == 0 {
		return []byte(fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr))
	}
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n",
		path, addr, bodyLen)
	return append([]byte(head), bytes.Repeat([]byte("x"), bodyLen)...)
}

// dial connects, or returns nil (the first request then counts the failure and redials).
func dial(addr string) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil
	}
	return c
}

// run makes n requests on c, redialling after a failure; returns each successful request's
// latency and the number that failed.
func run(c net.Conn, addr string, request []byte, n int) (latencies []time.Duration, failed int) {
	latencies = make([]time.Duration, 0, n)
	var r *bufio.Reader
	if c != nil {
		r = bufio.NewReader(c)
	}
	for i := 0; i < n; i++ {
		if c == nil {
			if c = dial(addr); c == nil {
				failed++
				continue
			}
			r = bufio.NewReader(c)
		}
		t0 := time.Now()
		if err := exchange(c, r, request); err != nil {
			failed++
			c.Close()
			c = nil
			continue
		}
		latencies = append(latencies, time.Since(t0))
	}
	if c != nil {
		c.Close()
	}
	return latencies, failed
}

// exchange sends one request and reads its whole reply, which must be a 200.
func exchange(c net.Conn, r *bufio.Reader, request []byte) error {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(request); err != nil {
		return err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(p*float64(len(sorted)-1))]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
