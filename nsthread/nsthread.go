// Package nsthread runs code on an OS thread that may enter another network namespace,
// and puts the thread back afterwards: the one safe way for a Go program to work inside a
// namespace (a goroutine can move between threads, a namespace belongs to a thread).
package nsthread

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Run runs f on a fresh OS thread locked to its goroutine, and returns the thread to the
// network namespace it started in afterwards. f may change the thread's network namespace
// (setns, unshare). If the thread cannot be returned, it stays locked, so that the Go
// runtime discards it when the goroutine ends instead of reusing it in the wrong namespace.
func Run(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own network namespace: %w", err)
			return
		}
		defer own.Close()
		ferr := f()
		if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread is in the wrong namespace for good.
			errc <- errors.Join(ferr, fmt.Errorf("return to own network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// In runs f on a thread that has entered the network namespace at path (a /proc/PID/ns/net
// or a /run/netns/NAME file). Sockets f opens belong to that namespace.
func In(path string, f func() error) error {
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open network namespace: %w", err)
	}
	defer target.Close()
	return Run(func() error {
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter network namespace %s: %w", path, err)
		}
		return f()
	})
}
