package r53

import "runtime"

// inOrder runs work(i) for every i in [0, n) on every core, at most a few
// tasks ahead of the caller, and calls done(i) on the caller's goroutine
// in the order of i, as soon as task i is finished: the caller's
// sequential part (adding to a zone builder) overlaps the parallel one.
// done returning false stops it (tasks already started still finish).
func inOrder(n int, work func(i int), done func(i int) bool) {
	workers := runtime.GOMAXPROCS(0)
	if n < 2 || workers < 2 {
		for i := range n {
			work(i)
			if !done(i) {
				return
			}
		}
		return
	}
	finished := make([]chan struct{}, n)
	for i := range finished {
		finished[i] = make(chan struct{})
	}
	jobs := make(chan int)
	window := make(chan struct{}, 2*workers) // tasks started, not yet handed to done
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(jobs)
		for i := range n {
			select {
			case window <- struct{}{}:
			case <-stop:
				return
			}
			select {
			case jobs <- i:
			case <-stop:
				return
			}
		}
	}()
	for range min(workers, n) {
		go func() {
			for i := range jobs {
				work(i)
				close(finished[i])
			}
		}()
	}
	for i := range n {
		<-finished[i]
		if !done(i) {
			return
		}
		<-window
	}
}
