// The Go twins of benches/benches/compare/gort_rt.rs, workload by workload, with the same
// batch sizes (the constants below mirror those of benches/benches/compare/main.rs).
package workloads

import (
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

const (
	ctxTokens      = 10_000
	yields         = 1_000
	spawns         = 1_000
	chanMsgs       = 100_000
	chanCap        = 1024
	mpmcSides      = 4
	selectMsgs     = 10_000
	mutexOps       = 10_000
	mutexWorkers   = 8
	mutexPerWorker = 10_000
	wgTasks        = 1_000
	timers         = 10_000
	timerSleep     = time.Millisecond
	echoRounds     = 1_000
	echoMsg        = 64
)

// run times b.N iterations (batches) and reports ns per operation ("ns/unit"): the time of
// one batch divided by the `ops` operations in it.
func run(b *testing.B, ops int, iteration func()) {
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		iteration()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(ops), "ns/unit")
}

func check(what string, got, want uint64) {
	if got != want {
		panic(what)
	}
}

// Sum of 0..n-1.
func triangle(n uint64) uint64 { return n * (n - 1) / 2 }

func BenchmarkCtxswitch(b *testing.B) {
	run(b, ctxTokens, func() {
		ch := make(chan struct{})
		go func() {
			for i := 0; i < ctxTokens; i++ {
				ch <- struct{}{}
			}
			close(ch)
		}()
		var got uint64
		for range ch {
			got++
		}
		check("ctxswitch tokens", got, ctxTokens)
	})
}

func BenchmarkYieldNow(b *testing.B) {
	run(b, yields, func() {
		for i := 0; i < yields; i++ {
			runtime.Gosched()
		}
	})
}

// Go has no join handle: `go` plus a WaitGroup, each goroutine leaving its result in a slot.
func BenchmarkSpawnJoin(b *testing.B) {
	results := make([]uint64, spawns)
	run(b, spawns, func() {
		var wg sync.WaitGroup
		wg.Add(spawns)
		for i := 0; i < spawns; i++ {
			go func(i int) {
				results[i] = uint64(i) + 1
				wg.Done()
			}(i)
		}
		wg.Wait()
		var sum uint64
		for _, r := range results {
			sum += r
		}
		check("spawn_join sum", sum, spawns*(spawns+1)/2)
	})
}

func oneToOne(capacity int) {
	ch := make(chan uint64, capacity)
	go func() {
		for i := uint64(0); i < chanMsgs; i++ {
			ch <- i
		}
		close(ch)
	}()
	var sum uint64
	for v := range ch {
		sum += v
	}
	check("1x1 sum", sum, triangle(chanMsgs))
}

func manyToMany(capacity int) {
	ch := make(chan uint64, capacity)
	sums := make(chan uint64, mpmcSides)
	per := uint64(chanMsgs / mpmcSides)
	var producers sync.WaitGroup
	producers.Add(mpmcSides)
	for p := uint64(0); p < mpmcSides; p++ {
		go func(p uint64) {
			for i := p * per; i < (p+1)*per; i++ {
				ch <- i
			}
			producers.Done()
		}(p)
	}
	for c := 0; c < mpmcSides; c++ {
		go func() {
			var sum uint64
			for v := range ch {
				sum += v
			}
			sums <- sum
		}()
	}
	producers.Wait()
	close(ch)
	var sum uint64
	for c := 0; c < mpmcSides; c++ {
		sum += <-sums
	}
	check("4x4 sum", sum, triangle(chanMsgs))
}

func BenchmarkChanBuf1x1(b *testing.B)   { run(b, chanMsgs, func() { oneToOne(chanCap) }) }
func BenchmarkChanBuf4x4(b *testing.B)   { run(b, chanMsgs, func() { manyToMany(chanCap) }) }
func BenchmarkChanUnbuf1x1(b *testing.B) { run(b, chanMsgs, func() { oneToOne(0) }) }
func BenchmarkChanUnbuf4x4(b *testing.B) { run(b, chanMsgs, func() { manyToMany(0) }) }

// k producers, each sending selectMsgs/k values on its own buffered channel; the benchmark
// goroutine receives them all with a select over the k channels (never closed).
func selectSetup(k int) []chan uint64 {
	chans := make([]chan uint64, k)
	for i := range chans {
		chans[i] = make(chan uint64, chanCap)
		go func(ch chan uint64) {
			for v := uint64(0); v < uint64(selectMsgs/k); v++ {
				ch <- v
			}
		}(chans[i])
	}
	return chans
}

func BenchmarkSelect2(b *testing.B) {
	run(b, selectMsgs, func() {
		c := selectSetup(2)
		var sum uint64
		for i := 0; i < selectMsgs; i++ {
			select {
			case v := <-c[0]:
				sum += v
			case v := <-c[1]:
				sum += v
			}
		}
		check("select_2 sum", sum, 2*triangle(selectMsgs/2))
	})
}

func BenchmarkSelect8(b *testing.B) {
	run(b, selectMsgs, func() {
		c := selectSetup(8)
		var sum uint64
		for i := 0; i < selectMsgs; i++ {
			select {
			case v := <-c[0]:
				sum += v
			case v := <-c[1]:
				sum += v
			case v := <-c[2]:
				sum += v
			case v := <-c[3]:
				sum += v
			case v := <-c[4]:
				sum += v
			case v := <-c[5]:
				sum += v
			case v := <-c[6]:
				sum += v
			case v := <-c[7]:
				sum += v
			}
		}
		check("select_8 sum", sum, 8*triangle(selectMsgs/8))
	})
}

func BenchmarkMutexUncontended(b *testing.B) {
	run(b, mutexOps, func() {
		var mu sync.Mutex
		var counter uint64
		for i := 0; i < mutexOps; i++ {
			mu.Lock()
			counter++
			mu.Unlock()
		}
		check("mutex counter", counter, mutexOps)
	})
}

func BenchmarkMutexContended8(b *testing.B) {
	run(b, mutexWorkers*mutexPerWorker, func() {
		var mu sync.Mutex
		var counter uint64
		var wg sync.WaitGroup
		wg.Add(mutexWorkers)
		for w := 0; w < mutexWorkers; w++ {
			go func() {
				for i := 0; i < mutexPerWorker; i++ {
					mu.Lock()
					counter++
					mu.Unlock()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		check("mutex counter", counter, mutexWorkers*mutexPerWorker)
	})
}

func BenchmarkWaitgroup(b *testing.B) {
	run(b, wgTasks, func() {
		var wg sync.WaitGroup
		wg.Add(wgTasks)
		for i := 0; i < wgTasks; i++ {
			go wg.Done()
		}
		wg.Wait()
	})
}

func BenchmarkTimers10k(b *testing.B) {
	run(b, timers, func() {
		var wg sync.WaitGroup
		wg.Add(timers)
		for i := 0; i < timers; i++ {
			go func() {
				time.Sleep(timerSleep)
				wg.Done()
			}()
		}
		wg.Wait()
	})
}

// A client (the benchmark goroutine) and an echo-server goroutine on one loopback TCP
// connection (Go sets TCP_NODELAY by default): echoRounds round trips of echoMsg bytes.
// Listening, connecting and accepting are part of the iteration.
func BenchmarkTcpEcho(b *testing.B) {
	run(b, echoRounds, func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		done := make(chan struct{})
		go func() {
			conn, err := ln.Accept()
			if err != nil {
				panic(err)
			}
			buf := make([]byte, echoMsg)
			for {
				if _, err := io.ReadFull(conn, buf); err != nil {
					break
				}
				if _, err := conn.Write(buf); err != nil {
					panic(err)
				}
			}
			conn.Close()
			close(done)
		}()
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			panic(err)
		}
		msg, buf := make([]byte, echoMsg), make([]byte, echoMsg)
		for i := 0; i < echoRounds; i++ {
			if _, err := conn.Write(msg); err != nil {
				panic(err)
			}
			if _, err := io.ReadFull(conn, buf); err != nil {
				panic(err)
			}
		}
		conn.Close()
		<-done
		ln.Close()
	})
}
