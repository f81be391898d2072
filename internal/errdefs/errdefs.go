// Package errdefs holds the few error kinds that cross package boundaries.
// Services wrap them with context (fmt.Errorf("...: %w", errdefs.ErrNotFound));
// the CRI layer maps them to gRPC codes in exactly one place.
package errdefs

import "errors"

var (
	// ErrNotFound: the named object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: an object with that name or ID exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalidArgument: the caller's request is malformed.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrFailedPrecondition: the object is in a state that forbids the call.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrResourceExhausted: the node lacks what the call needs (disk).
	ErrResourceExhausted = errors.New("resource exhausted")
	// ErrUnimplemented: Berth does not support this yet.
	ErrUnimplemented = errors.New("not implemented")
	// ErrUnauthenticated: a registry refused the credentials (or wanted some).
	ErrUnauthenticated = errors.New("unauthenticated")
)

// IsNotFound reports whether err is, or wraps, ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
