// echoload is a load generator for TCP echo servers written in Go, so that a gort server is
// judged by a client whose scheduler is not gort's. It speaks the protocol of gort's
// examples/echo_load.rs and takes the same arguments:
//
//   - C connections, all opened before the clock starts, each driven by its own goroutine;
//   - one 64-byte message in flight per connection: write it, read its echo back in full into a
//     4 KiB buffer, check every byte, repeat until D seconds have passed;
//   - each message carries its connection number (4 bytes, little endian) and sequence number
//     (8 bytes), the other 52 bytes a xorshift pattern seeded by both, so a stale, mixed-up or
//     corrupted echo is caught; an echo longer than the message is an error too;
//   - a request is one message written and its echo read back; its latency is the time between
//     the two, in whole microseconds; the q quantile is the ceil(n*q)-th smallest latency.
//
// Usage: echoload [addr] [connections] [seconds]   (defaults 127.0.0.1:7878 50 5)
// Last line:
//
//	echoload: conns=<C> secs=<D> reqs=<N> reqs_per_s=<N/D> p50_us=<..> p99_us=<..> p999_us=<..> errors=<E>
//
// where D is the measured duration. Errors (failed connects, I/O errors, altered echoes) are
// reported on stderr; a connection stops at its first error. Exits with status 1 if any error
// occurred. GOMAXPROCS sets the number of threads running goroutines, as for any Go program.
//
// It replaced cmd/echo_load (the same client, with a last line of conns, reqs_per_s, p99_us
// and errors only), which docs/BENCHMARKS.md's sections before session 5 name.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
)

const msgLen = 64

// message returns message seq of connection id.
func message(id uint32, seq uint64) [msgLen]byte {
	var m [msgLen]byte
	binary.LittleEndian.PutUint32(m[0:4], id)
	binary.LittleEndian.PutUint64(m[4:12], seq)
	x := (uint64(id) << 32) ^ seq ^ 0x9e3779b97f4a7c15
	for i := 12; i < msgLen; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		m[i] = byte(x)
	}
	return m
}

// connResult is what one connection's goroutine measured.
type connResult struct {
	latenciesUs []uint32
	errors      uint64
}

// drive runs connection id until the deadline or its first error.
func drive(id uint32, conn net.Conn, deadline time.Time) connResult {
	r := connResult{latenciesUs: make([]uint32, 0, 1<<12)}
	echo := make([]byte, 4096)
	for seq := uint64(0); ; seq++ {
		sent := time.Now()
		if !sent.Before(deadline) {
			return r
		}
		msg := message(id, seq)
		if err := roundTrip(conn, msg[:], echo); err != nil {
			fmt.Fprintf(os.Stderr, "echoload: connection %d: %v\n", id, err)
			r.errors++
			return r
		}
		if !bytes.Equal(echo[:msgLen], msg[:]) {
			fmt.Fprintf(os.Stderr, "echoload: connection %d: message %d came back altered\n", id, seq)
			r.errors++
			return r
		}
		us := time.Since(sent).Microseconds()
		r.latenciesUs = append(r.latenciesUs, uint32(min(us, int64(^uint32(0)))))
	}
}

// roundTrip writes msg and reads its echo into the front of buf.
func roundTrip(conn net.Conn, msg, buf []byte) error {
	if _, err := conn.Write(msg); err != nil {
		return err
	}
	got := 0
	for got < len(msg) {
		n, err := conn.Read(buf[got:])
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
		got += n
	}
	if got > len(msg) {
		return fmt.Errorf("echo of %d bytes to a %d-byte message", got, len(msg))
	}
	return nil
}

// percentile returns the q quantile of sorted (0 if empty).
func percentile(sorted []uint32, q float64) uint32 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(math.Ceil(float64(len(sorted))*q)) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}

func usage(bad string) {
	fmt.Fprintf(os.Stderr, "echoload: bad argument %q\nusage: echoload [addr] [connections] [seconds]\n", bad)
	os.Exit(2)
}

func main() {
	addr, conns, secs := "127.0.0.1:7878", 50, 5.0
	args := os.Args[1:]
	if len(args) > 0 {
		addr = args[0]
	}
	if len(args) > 1 {
		v, err := strconv.Atoi(args[1])
		if err != nil || v < 0 {
			usage(args[1])
		}
		conns = v
	}
	if len(args) > 2 {
		v, err := strconv.ParseFloat(args[2], 64)
		if err != nil || v < 0 {
			usage(args[2])
		}
		secs = v
	}
	if len(args) > 3 {
		usage(args[3])
	}

	streams := make([]net.Conn, 0, conns)
	var connectErrors uint64
	for i := 0; i < conns; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "echoload: connect %s: %v\n", addr, err)
			connectErrors++
			continue
		}
		streams = append(streams, c)
	}

	start := time.Now()
	deadline := start.Add(time.Duration(secs * float64(time.Second)))
	results := make([]connResult, len(streams))
	var wg sync.WaitGroup
	for i, c := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = drive(uint32(i), c, deadline)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()

	var all []uint32
	errs := connectErrors
	for _, r := range results {
		all = append(all, r.latenciesUs...)
		errs += r.errors
	}
	slices.Sort(all)
	fmt.Printf("echoload: conns=%d secs=%.2f reqs=%d reqs_per_s=%.0f p50_us=%d p99_us=%d p999_us=%d errors=%d\n",
		conns, elapsed, len(all), float64(len(all))/elapsed,
		percentile(all, 0.5), percentile(all, 0.99), percentile(all, 0.999), errs)
	if errs > 0 {
		os.Exit(1)
	}
}
