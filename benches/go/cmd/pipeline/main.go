// pipeline mirrors gort's examples/pipeline.rs: 4 producer goroutines send N messages into one
// channel of capacity 1024 and 4 consumer goroutines each spend 1 us of CPU (spinning on the
// clock) on every message; every value is checked (count and sum).
//
// Usage: pipeline N
// Last line: pipeline: mode=go maxprocs=<P> msgs=<N> ns_per_msg=<float>
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

const producers = 4
const consumers = 4
const work = time.Microsecond

func spin(v uint64) uint64 {
	start := time.Now()
	x := v
	for time.Since(start) < work {
		x = x*6364136223846793005 + 1
	}
	return x
}

var sink uint64

func main() {
	n := uint64(2_000_000)
	if len(os.Args) > 1 {
		v, err := strconv.ParseUint(os.Args[1], 10, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad N:", err)
			os.Exit(2)
		}
		n = v
	}
	per := n / producers
	total := per * producers
	ch := make(chan uint64, 1024)
	var counts, sums, sinks [consumers]uint64
	var pwg, cwg sync.WaitGroup
	start := time.Now()
	for p := uint64(0); p < producers; p++ {
		pwg.Add(1)
		go func(p uint64) {
			defer pwg.Done()
			for i := p * per; i < (p+1)*per; i++ {
				ch <- i
			}
		}(p)
	}
	for c := 0; c < consumers; c++ {
		cwg.Add(1)
		go func(c int) {
			defer cwg.Done()
			var cnt, sum, x uint64
			for v := range ch {
				x ^= spin(v)
				cnt++
				sum += v
			}
			counts[c], sums[c], sinks[c] = cnt, sum, x
		}(c)
	}
	pwg.Wait()
	close(ch)
	cwg.Wait()
	elapsed := time.Since(start)
	var cnt, sum uint64
	for c := 0; c < consumers; c++ {
		cnt += counts[c]
		sum += sums[c]
		sink ^= sinks[c]
	}
	if cnt != total || sum != total*(total-1)/2 {
		fmt.Fprintf(os.Stderr, "lost or duplicated messages: count %d sum %d\n", cnt, sum)
		os.Exit(1)
	}
	fmt.Printf("pipeline: mode=go maxprocs=%d msgs=%d ns_per_msg=%.1f\n",
		runtime.GOMAXPROCS(0), total, float64(elapsed.Nanoseconds())/float64(total))
}
