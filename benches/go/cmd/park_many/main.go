// Command park_many measures the resident memory cost of a parked goroutine.
//
// It mirrors gort's examples/park_many.rs: N goroutines are started and each
// blocks waiting to be readied; once all N are parked the process reads its
// own RSS from /proc/self/statm and reports (rss_now - rss_before_spawn) / N.
// Then it wakes them all and joins them.
//
// "Blocked waiting to be readied" is implemented with the lightest Go
// equivalent: every goroutine does a receive on one shared, unbuffered
// channel (`<-release`) and the main goroutine close()s it to wake them all.
// A parked receiver costs its goroutine (g struct + initial stack) plus one
// sudog on the channel's wait queue; no per-goroutine channel is allocated,
// so the figure is the goroutine's own footprint, not a channel's.
//
// Each goroutine increments a counter just before blocking; main polls that
// counter with runtime.Gosched until it reaches N, then yields a few more
// times so the last incrementers reach the receive.
//
// Usage: park_many N
// Last line: park_many: n=<N> rss_bytes_per_goroutine=<integer>
package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
)

func main() {
	if len(os.Args) != 2 {
		usage()
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n <= 0 {
		usage()
	}

	release := make(chan struct{})
	var parked atomic.Int64
	var wg sync.WaitGroup

	// Settle the heap so the baseline is not inflated by start-up garbage.
	runtime.GC()
	before := rssBytes()

	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer wg.Done()
			parked.Add(1)
			<-release
		}()
	}

	for parked.Load() < int64(n) {
		runtime.Gosched()
	}
	// The counter is bumped just before the receive; give the last few
	// goroutines the chance to actually block.
	for i := 0; i < 1000; i++ {
		runtime.Gosched()
	}

	now := rssBytes()
	perG := (now - before) / int64(n)

	close(release)
	wg.Wait()

	fmt.Printf("park_many: n=%d rss_bytes_per_goroutine=%d\n", n, perG)
}

// rssBytes returns the resident set size: resident pages (the second field
// of /proc/self/statm) times the page size.
func rssBytes() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		fmt.Fprintln(os.Stderr, "park_many: reading /proc/self/statm:", err)
		os.Exit(1)
	}
	fields := bytes.Fields(data)
	if len(fields) < 2 {
		fmt.Fprintln(os.Stderr, "park_many: unexpected /proc/self/statm:", string(data))
		os.Exit(1)
	}
	pages, err := strconv.ParseInt(string(fields[1]), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "park_many: parsing /proc/self/statm:", err)
		os.Exit(1)
	}
	return pages * int64(os.Getpagesize())
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: park_many N")
	os.Exit(2)
}
