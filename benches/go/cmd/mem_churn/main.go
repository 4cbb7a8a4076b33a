// Command mem_churn spawns and ends goroutines in bursts, then idles, and prints the process's
// resident memory before, at the peak and at intervals afterwards: whether memory comes back.
//
// It mirrors gort's examples/mem_churn.rs (same flags, same output lines): in a burst every
// goroutine blocks on a receive from one shared, unbuffered channel until the whole burst is
// blocked, then main closes the channel, which wakes and ends them all, and waits for them
// (sync.WaitGroup) before the next burst. RSS is /proc/self/statm's resident pages times the page
// size; the peak is the largest reading taken with a burst blocked. No runtime.GC or
// debug.FreeOSMemory is called: what comes back is what Go's own GC pacing and background
// scavenger return while the program sleeps. With -busy one goroutine computes from the end of
// the bursts on, so the program never idles.
//
// Usage: mem_churn [-total N] [-burst B] [-after-ms T] [-every-ms E] [-busy]
// (also spelled --total etc., as gort's example takes them).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	total := flag.Int("total", 1_000_000, "goroutines in all")
	burst := flag.Int("burst", 100_000, "goroutines per burst")
	afterMs := flag.Int("after-ms", 2000, "how long to watch RSS after the last burst (ms)")
	everyMs := flag.Int("every-ms", 250, "interval between RSS readings (ms)")
	busy := flag.Bool("busy", false, "keep one goroutine computing after the bursts")
	flag.Parse()
	if *burst <= 0 || *everyMs <= 0 {
		fmt.Fprintln(os.Stderr, "mem_churn: -burst and -every-ms must be positive")
		os.Exit(2)
	}

	before := rssBytes()
	fmt.Printf("mem_churn: maxprocs=%d total=%d burst=%d rss_before_mib=%.1f\n",
		runtime.GOMAXPROCS(0), *total, *burst, mib(before))
	start := time.Now()
	var peak int64
	for done := 0; done < *total; {
		n := min(*burst, *total-done)
		peak = max(peak, runBurst(n))
		done += n
	}
	fmt.Printf("mem_churn: bursts_ms=%.0f rss_peak_mib=%.1f peak/before=%.2f\n",
		float64(time.Since(start).Microseconds())/1e3, mib(peak), float64(peak)/float64(before))

	after := time.Duration(*afterMs) * time.Millisecond
	every := time.Duration(*everyMs) * time.Millisecond
	var stop atomic.Bool
	if *busy {
		go spinUntil(&stop)
	}
	idleStart := time.Now()
	var waited time.Duration
	for {
		rss := rssBytes()
		fmt.Printf("mem_churn: after_ms=%d rss_mib=%.1f rss/before=%.2f\n",
			waited.Milliseconds(), mib(rss), float64(rss)/float64(before))
		if waited >= after {
			break
		}
		waited = min(waited+every, after)
		time.Sleep(time.Until(idleStart.Add(waited)))
	}
	stop.Store(true)
}

// spinUntil computes until stop is set (Go preempts it asynchronously).
func spinUntil(stop *atomic.Bool) {
	x := uint64(1)
	for !stop.Load() {
		for i := 0; i < 1000; i++ {
			x = x*6364136223846793005 + 1
		}
	}
	sink = x
}

var sink uint64

// runBurst runs n goroutines blocked at once on one channel, reads RSS while they are all
// blocked, then ends them all. It returns that reading.
func runBurst(n int) int64 {
	release := make(chan struct{})
	var parked atomic.Int64
	var ended sync.WaitGroup
	ended.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer ended.Done()
			parked.Add(1)
			<-release
		}()
	}
	for parked.Load() < int64(n) {
		runtime.Gosched()
	}
	// Let the last goroutines reach their receive.
	for i := 0; i < 100; i++ {
		runtime.Gosched()
	}
	rss := rssBytes()
	close(release)
	ended.Wait()
	return rss
}

// rssBytes returns the resident set size: resident pages (the second field of
// /proc/self/statm) times the page size.
func rssBytes() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		fmt.Fprintln(os.Stderr, "mem_churn: reading /proc/self/statm:", err)
		os.Exit(1)
	}
	fields := bytes.Fields(data)
	if len(fields) < 2 {
		fmt.Fprintln(os.Stderr, "mem_churn: unexpected /proc/self/statm:", string(data))
		os.Exit(1)
	}
	pages, err := strconv.ParseInt(string(fields[1]), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mem_churn: parsing /proc/self/statm:", err)
		os.Exit(1)
	}
	return pages * int64(os.Getpagesize())
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
