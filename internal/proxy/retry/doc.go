// Package retry retries failed requests of the weft proxy without ever
// letting retries multiply an outage.
//
// Two limits apply to every retry:
//
//   - Policy, per route: which failures are retried (connect failures,
//     resets, listed HTTP statuses, listed gRPC codes), how many times per
//     request (MaxRetries), the full-jitter exponential backoff between tries,
//     a per-try timeout, and the largest request body that is buffered so it
//     can be sent again (MaxBodyBytes).
//   - Budget, per service and shared by all its requests: a retry budget as
//     in Linkerd and Finagle. Every original request deposits RetryRatio of a
//     token, every retry withdraws one token, and deposits and withdrawals
//     expire after TTL; MinRetriesPerSecond*TTL tokens are always on hand so a
//     quiet service can still retry. Retries can therefore add at most
//     RetryRatio to the live traffic (plus the small reserve) however bad the
//     outage: with every endpoint failing, N requests cause at most about
//     N*(1+RetryRatio) + MinRetriesPerSecond*TTL tries per TTL instead of
//     N*(1+MaxRetries).
//
// Do runs one request through an Attempt (which picks an endpoint and sends
// one try, so a retry can land on another endpoint) under a Policy and a
// Budget. Which failures are safe to retry:
//
//   - Attempt errors wrapping ErrNotSent (the request never left: connect
//     failure) are retried for every method when Policy.OnConnectFailure.
//   - Other errors (reset, broken connection, per-try timeout: the request may
//     have reached the endpoint) only when Policy.OnReset and the request is
//     idempotent (IsIdempotent, or an Idempotency-Key header) or
//     Policy.RetryNonIdempotent.
//   - Responses whose status is in Policy.Statuses only for idempotent
//     requests or with Policy.RetryNonIdempotent. No status is retried by
//     default: retrying 503s by default multiplies outages.
//   - Trailers-only gRPC responses (Grpc-Status in the response headers, so
//     nothing was streamed) whose code is in Policy.GRPCCodes, whatever the
//     method, as Envoy's retry_on grpc codes.
//
// Nothing is retried once the client's context is done, nor when the request
// body is too large to keep (such a body is streamed once, byte for byte).
//
// Request bodies are not read ahead: the first try streams the body while it
// is recorded (up to Policy.MaxBodyBytes) and a retry replays the record and
// then goes on with the rest, so a streaming request (gRPC client or bidi
// streaming, a slow upload) is not held back waiting for bytes the client
// only sends after it got the response headers.
//
// Zero values are literal: Policy{} retries nothing and BudgetConfig{} is
// invalid (TTL 0). Start from DefaultPolicy and DefaultBudgetConfig.
package retry
