// shared_timeouts mirrors gort's examples/shared_timeouts.rs: N goroutines each wait 500 ms
// to receive on ONE shared channel nobody sends on (a select on the channel and a timer, Go's
// receive with a timeout), against the same N each on a channel of its own. For each N and
// layout it prints the time from the latest deadline (each goroutine's start + 500 ms) until
// every goroutine has returned, and the time from the first start to the last.
//
// Usage: shared_timeouts [N...]   (default 10000 30000 100000)
// Lines: shared_timeouts: n=<N> layout=<shared|separate> past_timeout_ms=<f.1> starts_ms=<f.1> maxprocs=<P>
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const timeout = 500 * time.Millisecond

// run starts n waiters (on one channel if shared) and returns how long after the latest
// deadline the last one returned, and the spread of the deadlines.
func run(n int, shared bool) (time.Duration, time.Duration) {
	base := time.Now()
	var firstDeadline, lastDeadline atomic.Int64 // nanoseconds after base
	firstDeadline.Store(1 << 62)
	var timedOut atomic.Int64
	sharedCh := make(chan uint64)
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer wg.Done()
			ch := sharedCh
			if !shared {
				ch = make(chan uint64)
			}
			start := time.Now()
			deadline := int64(start.Add(timeout).Sub(base))
			for {
				old := lastDeadline.Load()
				if deadline <= old || lastDeadline.CompareAndSwap(old, deadline) {
					break
				}
			}
			for {
				old := firstDeadline.Load()
				if deadline >= old || firstDeadline.CompareAndSwap(old, deadline) {
					break
				}
			}
			t := time.NewTimer(timeout)
			select {
			case <-ch:
				t.Stop()
			case <-t.C:
				timedOut.Add(1)
			}
		}()
	}
	wg.Wait()
	allReturned := time.Since(base)
	if timedOut.Load() != int64(n) {
		fmt.Fprintln(os.Stderr, "not every wait timed out")
		os.Exit(1)
	}
	past := allReturned - time.Duration(lastDeadline.Load())
	if past < 0 {
		past = 0
	}
	return past, time.Duration(lastDeadline.Load() - firstDeadline.Load())
}

func main() {
	sizes := []int{10_000, 30_000, 100_000}
	if len(os.Args) > 1 {
		sizes = sizes[:0]
		for _, a := range os.Args[1:] {
			v, err := strconv.Atoi(a)
			if err != nil {
				fmt.Fprintln(os.Stderr, "bad N:", err)
				os.Exit(2)
			}
			sizes = append(sizes, v)
		}
	}
	for _, n := range sizes {
		for _, layout := range []string{"shared", "separate"} {
			past, starts := run(n, layout == "shared")
			fmt.Printf("shared_timeouts: n=%d layout=%s past_timeout_ms=%.1f starts_ms=%.1f maxprocs=%d\n",
				n, layout, float64(past)/float64(time.Millisecond),
				float64(starts)/float64(time.Millisecond), runtime.GOMAXPROCS(0))
		}
	}
}
