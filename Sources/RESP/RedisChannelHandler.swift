import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import NIOTLS

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A batch of encoded commands and the promise for their replies, written as one unit.
struct RedisRequest: Sendable {
    var buffer: ByteBuffer
    var count: Int
    var promise: EventLoopPromise<[RESPValue]>
    var timeout: TimeAmount?
}

/// Writes requests, parses replies and hands them to the oldest waiting request. The state
/// lives in `ConnectionStateMachine`; this handler only performs what it decides.
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct Entry {
        var promise: EventLoopPromise<[RESPValue]>
        var timer: Scheduled<Void>?
    }

    /// Requests written, and requests answered or failed: replies come in order, so request
    /// number `n` is done once `n < finished`.
    private var issued = 0
    private var finished = 0
    /// When bytes last arrived: a request's time limit counts from it, so a long reply that
    /// keeps arriving (a big value on a slow link) is not cut off.
    private var lastRead = NIODeadline.now()

    // Touched on the channel's event loop only; a run-time exclusivity check per reply cost more
    // than the matching itself.
    @exclusivity(unchecked) private var machine = ConnectionStateMachine<Entry>()
    /// Why the connection ended and when it last read, readable from any thread.
    let status: ChannelStatus
    private var readBuffer: ByteBuffer?
    private let parser: RESPParser
    private let endpoint: String
    private let tls: Bool
    /// Whether the TLS handshake finished: a time limit passed before it did says the port may not speak TLS.
    private var tlsHandshakeDone = false

    init(endpoint: String, parser: RESPParser, tls: Bool, status: ChannelStatus) {
        self.status = status
        self.endpoint = endpoint
        self.parser = parser
        self.tls = tls
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        var entry = Entry(promise: request.promise, timer: nil)
        let number = issued
        issued += 1
        if let timeout = request.timeout {
            entry.timer = arm(context: context, request: number, timeout: timeout, at: .now() + timeout)
        }
        switch machine.write(entry, expected: request.count) {
        case .write:
            context.write(wrapOutboundOut(request.buffer), promise: promise)
        case .fail(let error):
            finished += 1
            entry.timer?.cancel()
            request.promise.fail(error)
            promise?.fail(error)
        }
    }

    /// The time limit of request `number`: when it passes with the request still waiting and
    /// nothing read for `timeout`, the connection fails; bytes read since, it waits on.
    private func arm(context: ChannelHandlerContext, request number: Int, timeout: TimeAmount, at deadline: NIODeadline) -> Scheduled<Void> {
        let loopBoundContext = context
        return context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            guard number >= finished, machine.isActive else { return }
            let quietUntil = lastRead + timeout
            if quietUntil > .now() {
                _ = arm(context: loopBoundContext, request: number, timeout: timeout, at: quietUntil)
                return
            }
            let error =
                tls && !tlsHandshakeDone
                ? RedisError(
                    .tlsHandshakeTimeout, "TLS handshake with \(endpoint) not answered within \(Self.show(timeout))", endpoint: endpoint)
                : RedisError(
                    .requestTimeout,
                    "request to \(endpoint) timed out after \(Self.show(timeout)) without a byte", endpoint: endpoint)
            fail(context: loopBoundContext, with: error)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastRead = .now()
        status.read(at: lastRead)
        var incoming = unwrapInboundIn(data)
        if var held = readBuffer, held.readableBytes > 0 {
            readBuffer = nil
            // The unread tail is the only owner of its storage (see below), so this appends
            // in place. When the read completes the one reply in the tail (a bulk string says
            // how long it is), only those bytes are appended and the rest is parsed where it
            // was read: appending every read to the tail copied every byte once more.
            if let missing = parser.missingBytes(held), missing < incoming.readableBytes {
                var completing = incoming.readSlice(length: missing)!
                held.writeBuffer(&completing)
                guard consume(context: context, &held) else { return }
                if held.readableBytes > 0 {
                    held.writeBuffer(&incoming)
                    incoming = held
                }
            } else {
                held.writeBuffer(&incoming)
                incoming = held
            }
        }
        // Worked on as a local: each access of a stored property here was checked for
        // exclusive access at run time, several times per reply.
        var buffer = incoming
        let read = buffer.readerIndex
        guard consume(context: context, &buffer) else { return }
        // Replies are slices sharing the read buffer's storage: appending to it would copy the
        // whole buffer. An incomplete reply left after some were parsed moves to storage of its
        // own (only that tail is copied), as does one too big for the buffer it is in; a bulk
        // string gets room for all of it, so that appending does not copy it again as it grows.
        if buffer.readableBytes > 0 {
            let missing = parser.missingBytes(buffer)
            if buffer.readerIndex != read || (missing ?? 0) > buffer.writableBytes {
                let room = missing.map { min($0, 64 << 20) } ?? max(buffer.readableBytes, 65536 / 2)
                var tail = context.channel.allocator.buffer(capacity: buffer.readableBytes + room)
                tail.writeImmutableBuffer(buffer)
                readBuffer = tail
            } else {
                readBuffer = buffer
            }
        }
    }

    /// Parses the replies in `buffer` and hands each to its request; false when the
    /// connection was closed (bad input, or a reply nobody asked for).
    private func consume(context: ChannelHandlerContext, _ buffer: inout ByteBuffer) -> Bool {
        guard machine.isActive else { return true }
        var open = true
        do {
            try parser.parseEach(&buffer) { value in
                switch machine.read(consume value, endpoint: endpoint) {
                case .wait, .ignore:
                    break
                case .succeed(let entry, let replies):
                    finished += 1
                    entry.timer?.cancel()
                    entry.promise.succeed(replies)
                case .close(let error, let failing):
                    status.closeWith(error)
                    finish(failing, with: error)
                    context.close(promise: nil)
                    open = false
                }
                return open && machine.isActive
            }
        } catch {
            // Something else listens there: say what it looks like, not only the bad byte.
            let head = buffer.getString(at: buffer.readerIndex, length: min(5, buffer.readableBytes)) ?? ""
            let what = head.hasPrefix("HTTP/") ? " (an HTTP server answered: this port is not a Redis or Valkey server)" : ""
            fail(
                context: context,
                with: RedisError(
                    .protocolError, "invalid reply from \(endpoint): \(error)\(what)",
                    endpoint: endpoint, underlying: error))
            return false
        }
        return open
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? TLSUserEvent, case .handshakeCompleted = e { tlsHandshakeDone = true }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, with: Self.classify(error, endpoint: endpoint, tls: tls))
    }

    func channelInactive(context: ChannelHandlerContext) {
        let error = RedisError(.connectionClosed, "connection to \(endpoint) closed", endpoint: endpoint)
        finish(closeMachine(error), with: machine.closeError ?? error)
        context.fireChannelInactive()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        let error = RedisError(.connectionClosed, "connection to \(endpoint) closed by the client", endpoint: endpoint)
        finish(closeMachine(error), with: machine.closeError ?? error)
        context.close(mode: mode, promise: promise)
    }

    private func fail(context: ChannelHandlerContext, with error: RedisError) {
        finish(closeMachine(error), with: machine.closeError ?? error)
        context.close(promise: nil)
    }

    private func closeMachine(_ error: RedisError) -> [Entry] {
        let failing = machine.close(error)
        if let e = machine.closeError { status.closeWith(e) }
        return failing
    }

    private func finish(_ entries: [Entry], with error: RedisError) {
        finished += entries.count
        for e in entries {
            e.timer?.cancel()
            e.promise.fail(error)
        }
    }

    static func show(_ t: TimeAmount) -> String {
        let ms = t.nanoseconds / 1_000_000
        return ms % 1000 == 0 ? "\(ms / 1000) s" : "\(ms) ms"
    }

    /// Turns an error from the channel (TLS, I/O) into one that names the endpoint.
    static func classify(_ error: any Error, endpoint: String, tls: Bool) -> RedisError {
        if let e = error as? RedisError { return e }
        let text = String(describing: error)
        if error is NIOSSLError || error is NIOSSLExtraError || error is BoringSSLError {
            let what: String
            if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("certificate verify failed") {
                what = "certificate verification failed"
            } else if error as? NIOSSLExtraError == .failedToValidateHostname {
                what = "the server certificate does not match the host name"
            } else {
                what = "handshake failed"
            }
            return RedisError(.tls, "TLS with \(endpoint): \(what) (\(text))", endpoint: endpoint, underlying: error)
        }
        if let c = error as? ChannelError, c == .ioOnClosedChannel || c == .alreadyClosed || c == .eof {
            return RedisError(.connectionClosed, "connection to \(endpoint) is closed", endpoint: endpoint, underlying: error)
        }
        if let io = error as? IOError, io.errnoCode == ECONNRESET {
            return RedisError(
                .connectionClosed, "connection to \(endpoint) reset by the server", endpoint: endpoint,
                underlying: error)
        }
        return RedisError(
            .connectionFailed, "connection to \(endpoint) failed: \(text)", endpoint: endpoint,
            underlying: error)
    }
}

/// What a connection's handler tells its callers from the event loop: the first error the
/// connection closed with (requests written after the handler is gone fail with it), and when
/// bytes last arrived (a reply still arriving is no silence).
final class ChannelStatus: Sendable {
    private let state = NIOLockedValueBox<(error: RedisError?, lastRead: NIODeadline)>((nil, .now()))

    func closeWith(_ e: RedisError) { state.withLockedValue { if $0.error == nil { $0.error = e } } }
    var closeError: RedisError? { state.withLockedValue { $0.error } }
    func read(at t: NIODeadline) { state.withLockedValue { $0.lastRead = t } }
    var lastRead: NIODeadline { state.withLockedValue { $0.lastRead } }
}
