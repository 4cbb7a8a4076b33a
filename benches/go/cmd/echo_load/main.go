// echo_load is the Go twin of gort's examples/echo_load.rs: a load generator for TCP echo
// servers that is not gort, so a gort server is not measured by gort on both sides. It opens C
// connections, each driven by its own goroutine that sends 64-byte messages one at a time for
// D seconds and checks every echoed byte (each message carries its connection and sequence
// number, the rest a pattern derived from both), reading echoes into a 4 KiB buffer. All
// connections are opened before the clock starts. A request is one message written and its
// echo read back in full; its latency is the time between the two.
//
// Usage: echo_load [addr] [connections] [seconds]   (defaults 127.0.0.1:7878 50 5)
// Last line: echo_load: conns=<C> reqs_per_s=<number> p99_us=<number> errors=<number>
// Exits with status 1 if any error occurred.
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
)

const msgLen = 64

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

type result struct {
	latencies []uint32
	errors    uint64
}

func drive(id uint32, conn net.Conn, deadline time.Time) result {
	r := result{latencies: make([]uint32, 0, 1<<12)}
	buf := make([]byte, 4096)
	for seq := uint64(0); ; seq++ {
		sent := time.Now()
		if !sent.Before(deadline) {
			break
		}
		msg := message(id, seq)
		if _, err := conn.Write(msg[:]); err != nil {
			fmt.Fprintf(os.Stderr, "echo_load: connection %d: %v\n", id, err)
			r.errors++
			break
		}
		got := 0
		for got < msgLen {
			n, err := conn.Read(buf[got:])
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				fmt.Fprintf(os.Stderr, "echo_load: connection %d: %v\n", id, err)
				r.errors++
				return r
			}
			got += n
		}
		if got > msgLen || string(buf[:msgLen]) != string(msg[:]) {
			fmt.Fprintf(os.Stderr, "echo_load: connection %d: message %d came back altered\n", id, seq)
			r.errors++
			break
		}
		us := time.Since(sent).Microseconds()
		if us > int64(^uint32(0)) {
			us = int64(^uint32(0))
		}
		r.latencies = append(r.latencies, uint32(us))
	}
	return r
}

func main() {
	addr, conns, secs := "127.0.0.1:7878", 50, 5.0
	args := os.Args[1:]
	if len(args) > 0 {
		addr = args[0]
	}
	if len(args) > 1 {
		v, err := strconv.Atoi(args[1])
		if err != nil {
			fmt.Fprintf(os.Stderr, "echo_load: bad argument %q\n", args[1])
			os.Exit(2)
		}
		conns = v
	}
	if len(args) > 2 {
		v, err := strconv.ParseFloat(args[2], 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "echo_load: bad argument %q\n", args[2])
			os.Exit(2)
		}
		secs = v
	}
	streams := make([]net.Conn, 0, conns)
	var connectErrors uint64
	for i := 0; i < conns; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "echo_load: connect %s: %v\n", addr, err)
			connectErrors++
			continue
		}
		streams = append(streams, c)
	}
	start := time.Now()
	deadline := start.Add(time.Duration(secs * float64(time.Second)))
	results := make([]result, len(streams))
	var wg sync.WaitGroup
	for i, c := range streams {
		wg.Add(1)
		go func(i int, c net.Conn) {
			defer wg.Done()
			results[i] = drive(uint32(i), c, deadline)
		}(i, c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []uint32
	errors := connectErrors
	for _, r := range results {
		all = append(all, r.latencies...)
		errors += r.errors
	}
	p99 := uint32(0)
	if len(all) > 0 {
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		k := int(float64(len(all))*0.99+0.999999) - 1
		if k < 0 {
			k = 0
		}
		if k >= len(all) {
			k = len(all) - 1
		}
		p99 = all[k]
	}
	fmt.Printf("echo_load: conns=%d reqs_per_s=%.0f p99_us=%d errors=%d\n",
		conns, float64(len(all))/elapsed.Seconds(), p99, errors)
	if errors > 0 {
		os.Exit(1)
	}
}
