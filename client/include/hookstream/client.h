// The hookstream C++ client: include this for everything.
//
//   Subscriber: an auto-resuming, continuity-checking subscription (hookstream/subscriber.h).
//   Publisher:  batched publishing with retries that never store an event twice
//               (hookstream/publisher.h).
//   v1::EventStream::Stub for the unary calls (GetStream, ListStreams, GetLog).
//
// Both work on any std::shared_ptr<grpc::Channel>, an in-process one included.
#ifndef HOOKSTREAM_CLIENT_CLIENT_H_
#define HOOKSTREAM_CLIENT_CLIENT_H_

#include "hookstream/backoff.h"
#include "hookstream/publisher.h"
#include "hookstream/subscriber.h"
#include "hookstream/v1/event_stream.grpc.pb.h"

#endif  // HOOKSTREAM_CLIENT_CLIENT_H_
