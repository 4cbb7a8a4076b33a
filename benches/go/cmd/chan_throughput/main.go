// chan_throughput mirrors gort's examples/chan_throughput.rs: 4 producer goroutines and 4
// consumer goroutines share one channel of capacity 1024; N uint64 messages in total; every
// value must be received exactly once (checked by count and sum).
//
// Usage: chan_throughput N
// Last line: chan_throughput: msgs=<N> maxprocs=<P> mmsgs_per_s=<float>
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

func main() {
	n := uint64(10_000_000)
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
	var counts, sums [consumers]uint64
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
			var cnt, sum uint64
			for v := range ch {
				cnt++
				sum += v
			}
			counts[c], sums[c] = cnt, sum
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
	}
	if cnt != total || sum != total*(total-1)/2 {
		fmt.Fprintf(os.Stderr, "lost or duplicated messages: count %d sum %d\n", cnt, sum)
		os.Exit(1)
	}
	fmt.Printf("chan_throughput: msgs=%d maxprocs=%d mmsgs_per_s=%.2f\n",
		total, runtime.GOMAXPROCS(0), float64(total)/elapsed.Seconds()/1e6)
}
