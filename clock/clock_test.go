package clock

import (
	"context"
	"testing"
	"time"
)

func TestVirtual_JumpsForwardAndNeverBack(t *testing.T) {
	start := time.Date(2024, 10, 1, 8, 0, 0, 0, time.UTC)
	v := NewVirtual(start)
	ctx := context.Background()
	if err := v.WaitUntil(ctx, start.Add(8*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := v.Now(); !got.Equal(start.Add(8 * time.Hour)) {
		t.Fatalf("now = %s", got)
	}
	_ = v.WaitUntil(ctx, start)
	if got := v.Now(); !got.Equal(start.Add(8 * time.Hour)) {
		t.Fatalf("clock went back to %s", got)
	}
	v.Advance(time.Minute)
	if got := v.Now(); !got.Equal(start.Add(8*time.Hour + time.Minute)) {
		t.Fatalf("advance: now = %s", got)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := v.WaitUntil(cancelled, start.Add(9*time.Hour)); err == nil {
		t.Fatal("wait on a cancelled context succeeded")
	}
}

func TestWall_WaitHonoursCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (Wall{}).WaitUntil(ctx, Wall{}.Now().Add(time.Hour)); err == nil {
		t.Fatal("wall wait ignored cancellation")
	}
}

func TestManual_WaitUntilBlocksUntilTheClockIsMoved(t *testing.T) {
	start := time.Date(2024, 10, 1, 8, 0, 0, 0, time.UTC)
	m := NewManual(start)
	done := make(chan error, 1)
	go func() { done <- m.WaitUntil(context.Background(), start.Add(time.Minute)) }()
	m.Advance(30 * time.Second)
	select {
	case <-done:
		t.Fatal("returned half way")
	default:
	}
	m.Advance(30 * time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.WaitUntil(ctx, start.Add(time.Hour)); err == nil {
		t.Fatal("a cancelled wait returned nil")
	}
}
