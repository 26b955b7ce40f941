import DequeModule

/// Every state change of one connection's request/reply matching, kept free of I/O so it is
/// tested without a network. A request is a batch of `expected` commands written at once;
/// replies arrive in order and complete the oldest batch when its last reply is in.
/// `Request` is whatever the caller completes (an event-loop promise in the channel handler).
struct ConnectionStateMachine<Request> {
    private struct Pending {
        var request: Request
        var expected: Int
    }

    private enum State {
        case active
        case closed(RedisError)
    }

    private var state = State.active
    private var pending = Deque<Pending>()
    /// The replies of the oldest request so far: kept out of the queue, where appending to
    /// one went through the queue's storage and the request's array per reply.
    private var replies: [RESPValue] = []

    var pendingCount: Int { pending.count }

    var isActive: Bool { if case .active = state { return true } else { return false } }

    enum WriteAction {
        case write
        /// The connection is closed: fail the request with this error, write nothing.
        case fail(RedisError)
    }

    /// A batch of `expected` (> 0) commands is about to be written.
    mutating func write(_ request: Request, expected: Int) -> WriteAction {
        precondition(expected > 0, "a request holds at least one command")
        switch state {
        case .closed(let error):
            return .fail(error)
        case .active:
            if pending.isEmpty { replies.reserveCapacity(expected) }
            pending.append(Pending(request: request, expected: expected))
            return .write
        }
    }

    enum ReadAction {
        /// More replies are due for the oldest request.
        case wait
        case succeed(Request, [RESPValue])
        /// Out-of-band push: not a reply to anything.
        case ignore
        /// A reply nobody asked for: the stream cannot be trusted; close with this error.
        case close(RedisError, failing: [Request])
    }

    mutating func read(_ value: consuming RESPValue, endpoint: String) -> ReadAction {
        if case .push = value { return .ignore }
        guard case .active = state else { return .ignore }
        guard !pending.isEmpty else {
            let error = RedisError(
                .protocolError, "unexpected reply from \(endpoint) with no request waiting: \(value)",
                endpoint: endpoint)
            return .close(error, failing: close(error))
        }
        replies.append(value)
        guard replies.count == pending[pending.startIndex].expected else { return .wait }
        let head = pending.removeFirst()
        var done: [RESPValue] = []
        if let next = pending.first { done.reserveCapacity(next.expected) }
        swap(&done, &replies)
        return .succeed(head.request, done)
    }

    /// The connection ends (error, timeout, peer closed, client closed): every waiting
    /// request fails with `error`, and so does every later write. The first error sticks.
    mutating func close(_ error: RedisError) -> [Request] {
        if case .active = state { state = .closed(error) }
        let failing = pending.map(\.request)
        pending.removeAll()
        replies = []
        return failing
    }

    /// The error the connection closed with, if it did.
    var closeError: RedisError? {
        if case .closed(let e) = state { return e } else { return nil }
    }
}
