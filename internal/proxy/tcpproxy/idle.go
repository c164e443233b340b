package tcpproxy

// Why TCP_INFO for the splice path
//
// Options considered for an idle timeout that does not defeat splice(2):
//
//   - Counting bytes in user space (a wrapper or io.CopyBuffer loop) sees
//     every byte but is exactly what splice avoids; rejected for TCP<->TCP.
//   - Read deadlines that are extended "on activity": splice returns its byte
//     count only when it ends, so there is no activity signal to extend on.
//     Letting the deadline interrupt splice and restarting it is safe for the
//     read side, but a stalled write cannot be interrupted without losing the
//     bytes already in splice's pipe, and one-way traffic would need
//     cross-direction bookkeeping.
//   - Splicing in bounded chunks (io.LimitedReader) gives counts only per
//     chunk, so a slow trickle looks idle.
//   - TCP_INFO (chosen): the kernel already tracks, per socket, the time since
//     data was last received (tcpi_last_data_recv) and last sent
//     (tcpi_last_data_sent), in milliseconds. Reading it with getsockopt from
//     the Relay goroutine does not touch the data path at all. These fields
//     exist in every Linux kernel Go supports (unlike tcpi_bytes_acked /
//     tcpi_bytes_received, added in 4.1), and the failure mode is safe: a
//     kernel or sandbox that leaves them zero, or a getsockopt error, reads as
//     "active", so the idle timeout never fires early; the relay then ends by
//     EOF, error or context as usual.
//
// "Idle" matches the buffered path's meaning: no payload byte received or
// sent on either leg. Pure ACKs, keepalives and zero-window probes are not
// data and do not count. A direction whose consumer has stopped reading
// stops sending data, so a relay wedged on backpressure times out too.
