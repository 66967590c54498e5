package mailer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// SendLog is the email log that makes sends idempotent. The storage layer
// implements it (internal/store); keys are idempotency keys (see Key),
// recipientRef an opaque reference chosen by the caller, never the address.
type SendLog interface {
	// ReserveEmail records an attempt for key (creating the row on first
	// use) and reports whether a previous attempt was already marked sent.
	ReserveEmail(ctx context.Context, key, notice, recipientRef string) (alreadySent bool, err error)
	// MarkEmailSent records that the message with key was accepted by the
	// SMTP server, with its Message-ID.
	MarkEmailSent(ctx context.Context, key, messageID string) error
	// MarkEmailFailed records the last failure of key (text without the
	// address). A later ReserveEmail for the key may send again.
	MarkEmailFailed(ctx context.Context, key, errText string) error
}

// Outbox sends messages at most once per idempotency key as far as the email
// log can tell, and at least once (until success or a permanent failure) when
// the caller retries on retryable errors:
//
//  1. ReserveEmail(key); if the key was already sent, return the recorded
//     result (its deterministic Message-ID) without sending;
//  2. send over SMTP;
//  3. MarkEmailSent(key, Message-ID), or MarkEmailFailed(key, error text)
//     and return the send error (retryable or *PermanentError).
//
// The window that remains: if the process dies, or MarkEmailSent fails,
// after the server accepted the message but before the log recorded it, a
// retry sends the message again. That duplicate carries the same Message-ID
// (derived from the key, see MessageIDFor), so mail clients and servers that
// deduplicate by Message-ID drop it. The same holds for the rare connection
// loss after the end of DATA but before the server's reply. Two concurrent
// attempts with the same key are not excluded by this type (Temporal runs one
// attempt of an activity at a time).
type Outbox struct {
	sender *Sender
	log    SendLog
	// MarkTimeout bounds each Mark* call. They run on a context that is not
	// cancelled with the caller's, so a cancellation right after the send
	// still records it. Default 10s.
	MarkTimeout time.Duration
}

// NewOutbox wraps a Sender with an email log.
func NewOutbox(s *Sender, log SendLog) *Outbox {
	return &Outbox{sender: s, log: log, MarkTimeout: 10 * time.Second}
}

// Sender returns the wrapped sender.
func (o *Outbox) Sender() *Sender { return o.sender }

// Result of an Outbox send.
type Result struct {
	MessageID   string
	AlreadySent bool // the log had the key as sent; nothing was sent now
}

// Send sends m once per m.IdempotencyKey (required). Errors: *PermanentError
// for an invalid message (nothing is reserved) or a 5xx reply (recorded with
// MarkEmailFailed); every other error is retryable.
func (o *Outbox) Send(ctx context.Context, m Message) (Result, error) {
	p, err := o.prepare(m)
	if err != nil {
		return Result{}, err
	}
	already, err := o.log.ReserveEmail(ctx, p.key, string(p.notice), m.RecipientRef)
	if err != nil {
		return Result{}, fmt.Errorf("mailer: reserve email: %w", err)
	}
	if already {
		return Result{MessageID: p.messageID, AlreadySent: true}, nil
	}
	if err := o.sender.sendPooled(ctx, p); err != nil {
		return Result{}, o.failed(ctx, p, err)
	}
	return Result{MessageID: p.messageID}, o.sent(ctx, p)
}

func (o *Outbox) prepare(m Message) (*prepared, error) {
	if m.IdempotencyKey == "" {
		return nil, invalid(fmt.Errorf("%w: IdempotencyKey is required", ErrBadData))
	}
	return o.sender.prepare(m)
}

func (o *Outbox) markCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	d := o.MarkTimeout
	if d <= 0 {
		d = 10 * time.Second
	}
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}

func (o *Outbox) sent(ctx context.Context, p *prepared) error {
	mctx, cancel := o.markCtx(ctx)
	defer cancel()
	if err := o.log.MarkEmailSent(mctx, p.key, p.messageID); err != nil {
		return fmt.Errorf("mailer: message %s was sent but not recorded (a retry sends it again with the same Message-ID): %w", p.messageID, err)
	}
	return nil
}

// failed records sendErr and returns it (joined with a logging failure, which
// keeps the classification of sendErr).
func (o *Outbox) failed(ctx context.Context, p *prepared, sendErr error) error {
	mctx, cancel := o.markCtx(ctx)
	defer cancel()
	if err := o.log.MarkEmailFailed(mctx, p.key, sendErr.Error()); err != nil {
		return errors.Join(sendErr, fmt.Errorf("mailer: record failure: %w", err))
	}
	return sendErr
}

// BulkOptions tune SendBulk.
type BulkOptions struct {
	// RatePerSecond limits messages per second over all connections
	// (0: no limit).
	RatePerSecond float64
	// BatchSize is the number of messages sent over one SMTP connection
	// before it is closed and a new one opened (default 200).
	BatchSize int
	// Connections is the number of SMTP connections used in parallel
	// (default 1). Messages are still handed out in order, and progress is
	// reported as a contiguous prefix.
	Connections int
	// StartAt is the index of the first message to handle: the last value
	// given to Progress (or BulkResult.Done) by an interrupted run.
	StartAt int
	// Progress, if set, is called (on the caller's goroutine) whenever the
	// handled prefix grows, with its length: every message before that index
	// was sent, skipped as already sent, or failed permanently, and is in the
	// email log. Record it as heartbeat details and pass it back as StartAt.
	// With one connection it is called after each message.
	Progress func(done int)
	// Attempts is how many times a message is tried on retryable errors,
	// reconnecting in between (default 3); then SendBulk returns the error.
	Attempts int
	// RetryDelay is the pause before the first reconnect, doubled each time
	// (default 200ms).
	RetryDelay time.Duration
}

// BulkFailure is a message that failed permanently in SendBulk.
type BulkFailure struct {
	Index int
	Key   string
	Err   error // a *PermanentError
}

// BulkResult sums up SendBulk.
type BulkResult struct {
	// Done is the length of the handled prefix: the StartAt for a retry
	// (len(msgs) when complete). Messages after it may have been handled
	// too (with several connections, or the one in flight when the run
	// stopped); the email log makes the retry skip them.
	Done     int
	Sent     int
	Skipped  int           // already sent according to the log
	Failures []BulkFailure // sorted by index
}

// SendBulk sends msgs[StartAt:] through the email log, BatchSize messages
// per SMTP connection, over Connections connections, at most RatePerSecond.
// A message whose key the log reports as sent is skipped. A permanent
// failure of one message (5xx, or a message that cannot be rendered) is
// recorded, listed in the result and does not stop the run. A retryable
// failure is retried on a new connection up to Attempts times; then SendBulk
// stops and returns the error, with Done at the handled prefix, so a retry
// of the whole call with StartAt = Done resumes there. Cancelling ctx stops
// the run the same way, after the messages in flight.
func (o *Outbox) SendBulk(ctx context.Context, msgs []Message, opts BulkOptions) (BulkResult, error) {
	start := opts.StartAt
	res := BulkResult{Done: start}
	if start < 0 || start > len(msgs) {
		return res, invalid(fmt.Errorf("%w: StartAt %d outside 0..%d", ErrBadData, start, len(msgs)))
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 200
	}
	if opts.Connections <= 0 {
		opts.Connections = 1
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 3
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = 200 * time.Millisecond
	}
	var lim *rate.Limiter
	if opts.RatePerSecond > 0 {
		lim = rate.NewLimiter(rate.Limit(opts.RatePerSecond), 1)
	}

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	next := make(chan int)
	outs := make(chan bulkOutcome)
	var wg sync.WaitGroup
	for range opts.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := &bulkConn{o: o, batch: opts.BatchSize}
			defer b.close()
			for i := range next {
				outs <- o.bulkOne(wctx, b, lim, i, msgs[i], opts)
			}
		}()
	}
	go func() {
		defer close(next)
		for i := start; i < len(msgs); i++ {
			if wctx.Err() != nil {
				return
			}
			select {
			case next <- i:
			case <-wctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(outs) }()

	handled := make([]bool, len(msgs)-start)
	var firstErr error
	for out := range outs {
		if out.err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("mailer: bulk send stopped at message %d: %w", out.i, out.err)
				stop()
			}
			continue
		}
		switch {
		case out.failure != nil:
			res.Failures = append(res.Failures, *out.failure)
		case out.skipped:
			res.Skipped++
		default:
			res.Sent++
		}
		handled[out.i-start] = true
		grown := false
		for res.Done < len(msgs) && handled[res.Done-start] {
			res.Done++
			grown = true
		}
		if grown {
			progress(opts, res.Done)
		}
	}
	sort.Slice(res.Failures, func(i, j int) bool { return res.Failures[i].Index < res.Failures[j].Index })
	if firstErr == nil && res.Done < len(msgs) {
		cause := context.Cause(ctx)
		if cause == nil {
			cause = errors.New("stopped")
		}
		firstErr = fmt.Errorf("mailer: bulk send stopped at message %d: %w", res.Done, cause)
	}
	return res, firstErr
}

type bulkOutcome struct {
	i       int
	skipped bool
	failure *BulkFailure // permanent
	err     error        // stops the run; the message is not handled
}

// bulkOne handles message i: render, reserve, rate-limit, send, record.
func (o *Outbox) bulkOne(ctx context.Context, b *bulkConn, lim *rate.Limiter, i int, m Message, opts BulkOptions) bulkOutcome {
	if err := ctx.Err(); err != nil {
		return bulkOutcome{i: i, err: err}
	}
	p, err := o.prepare(m)
	if err != nil {
		return bulkOutcome{i: i, failure: &BulkFailure{Index: i, Key: m.IdempotencyKey, Err: err}}
	}
	already, err := o.log.ReserveEmail(ctx, p.key, string(p.notice), m.RecipientRef)
	if err != nil {
		return bulkOutcome{i: i, err: fmt.Errorf("reserve email: %w", err)}
	}
	if already {
		return bulkOutcome{i: i, skipped: true}
	}
	if lim != nil {
		if err := lim.Wait(ctx); err != nil {
			return bulkOutcome{i: i, err: o.failed(ctx, p, err)}
		}
	}
	err = b.send(ctx, p, opts)
	switch {
	case err == nil:
		if err := o.sent(ctx, p); err != nil {
			return bulkOutcome{i: i, err: err}
		}
		return bulkOutcome{i: i}
	case IsPermanent(err):
		return bulkOutcome{i: i, failure: &BulkFailure{Index: i, Key: p.key, Err: o.failed(ctx, p, err)}}
	default:
		return bulkOutcome{i: i, err: o.failed(ctx, p, err)}
	}
}

func progress(opts BulkOptions, done int) {
	if opts.Progress != nil {
		opts.Progress(done)
	}
}

// bulkConn keeps one session per batch and replaces it when it breaks.
type bulkConn struct {
	o     *Outbox
	batch int
	sess  *Session
	used  int
}

func (b *bulkConn) close() {
	if b.sess != nil {
		_ = b.sess.Close()
		b.sess = nil
	}
}

func (b *bulkConn) send(ctx context.Context, p *prepared, opts BulkOptions) error {
	delay := opts.RetryDelay
	var err error
	for attempt := 1; ; attempt++ {
		if b.sess != nil && (b.sess.Broken() || b.used >= b.batch) {
			b.close()
		}
		if b.sess == nil {
			b.sess, err = b.o.sender.Dial(ctx)
			b.used = 0
		}
		if err == nil {
			err = b.sess.send(ctx, p)
			b.used++
			if err == nil || IsPermanent(err) {
				return err
			}
		}
		if attempt >= opts.Attempts || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay *= 2
	}
}
