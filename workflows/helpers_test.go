package workflows

import "go.temporal.io/sdk/temporal"

func nonRetryable(msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, "test", nil)
}
