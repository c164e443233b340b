// Package demo holds weft-demo: three small services that call each other,
// each speaking a different protocol, so a mesh can be shown carrying
// HTTP/1.1, gRPC and opaque TCP.
//
//   - catalog: a gRPC server (grpc.testing.TestService.UnaryCall) that prices
//     an item.
//   - inventory: a TCP line protocol server: "STOCK <item>\n" answers
//     "<item> <n>\n".
//   - frontend: an HTTP/1.1 server that calls catalog and inventory for each
//     request and answers with the combined text.
//
// Each service serves until its context is done, then stops gracefully and
// returns nil.
package demo
