import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// How to connect and how long to wait.
public struct RedisConnectionOptions: Sendable {
    public var connectTimeout: Duration
    /// Default time limit for one `send`/`pipeline` call; nil waits forever. When it passes,
    /// the connection is closed (replies after a lost one could not be matched any more).
    public var requestTimeout: Duration?
    /// TLS settings for `rediss://` endpoints; nil there means `RedisTLS()` (system trust
    /// roots, verification on). Build it once and share it across connections.
    public var tls: RedisTLS?
    /// Ask for RESP3 with HELLO 3 (falling back to RESP2 on servers without HELLO), or speak
    /// RESP2 only.
    public var preferRESP3: Bool
    /// CLIENT SETNAME value, shown by CLIENT LIST on the server.
    public var clientName: String?
    /// Commands renamed or disabled on the server (`rename-command`): applied to every
    /// command sent, the handshake's included.
    public var commandNames: CommandNames
    public var parser: RESPParser
    public var eventLoopGroup: any EventLoopGroup

    public init(
        connectTimeout: Duration = .seconds(10), requestTimeout: Duration? = .seconds(60),
        tls: RedisTLS? = nil, preferRESP3: Bool = true, clientName: String? = nil,
        commandNames: CommandNames = CommandNames(), parser: RESPParser = RESPParser(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        self.tls = tls
        self.preferRESP3 = preferRESP3
        self.clientName = clientName
        self.commandNames = commandNames
        self.parser = parser
        self.eventLoopGroup = eventLoopGroup
    }
}

/// One connection to one server: commands are pipelined (one write and flush per call,
/// replies matched in order), so several tasks may share it.
public final class RedisConnection: Sendable {
    public let endpoint: RedisEndpoint
    /// 3 after a successful HELLO 3, else 2.
    public let protocolVersion: Int
    /// The server's HELLO reply fields (`server`, `version`, `mode`, `role`, ...); empty
    /// when the server has no HELLO.
    public let serverInfo: [String: String]
    let channel: any Channel
    let status: ChannelStatus
    let requestTimeout: Duration?
    /// The server's names for commands (see `CommandNames`).
    public let commandNames: CommandNames
    /// False for the handshake's temporary view of a channel the final connection keeps.
    let ownsChannel: Bool

    init(
        channel: any Channel, status: ChannelStatus, endpoint: RedisEndpoint, protocolVersion: Int,
        serverInfo: [String: String], requestTimeout: Duration?, commandNames: CommandNames, ownsChannel: Bool = true
    ) {
        self.commandNames = commandNames
        self.ownsChannel = ownsChannel
        self.channel = channel
        self.status = status
        self.endpoint = endpoint
        self.protocolVersion = protocolVersion
        self.serverInfo = serverInfo
        self.requestTimeout = requestTimeout
    }

    /// Connects, logs in (HELLO 3 with AUTH, or AUTH on RESP2-only servers) and selects the
    /// endpoint's database.
    public static func connect(
        to endpoint: RedisEndpoint,
        options: RedisConnectionOptions = RedisConnectionOptions()
    ) async throws(RedisError)
        -> RedisConnection
    {
        let status = ChannelStatus()
        let channel = try await openChannel(to: endpoint, options: options, status: status)
        do {
            return try await Handshake.run(channel: channel, status: status, endpoint: endpoint, options: options)
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// Sends one command and returns its reply; an error reply is returned as `.error`
    /// (`try reply.throwIfError()` raises it).
    public func send(_ command: [RESPArg], timeout: Duration? = nil) async throws(RedisError) -> RESPValue {
        try await pipeline([command], timeout: timeout)[0]
    }

    public func send(_ arguments: RESPArg..., timeout: Duration? = nil) async throws(RedisError) -> RESPValue {
        try await send(arguments, timeout: timeout)
    }

    /// Sends all commands in one write and flush and returns their replies in order. Error
    /// replies are values in the result, so one failed command does not lose the others.
    /// Throws when the connection fails, the time limit passes or the task is cancelled.
    public func pipeline(_ commands: [[RESPArg]], timeout: Duration? = nil) async throws(RedisError) -> [RESPValue] {
        if commands.isEmpty { return [] }
        let batch = RESPBatch(capacity: RESPEncoder.size(commands))
        for c in commands { batch.command(c) }
        return try await pipeline(batch, timeout: timeout)
    }

    /// Sends a batch built with `RESPBatch`, in one write and flush: every command in it under
    /// the server's name for it (`commandNames`), a disabled one not at all (answered in
    /// place, as an unknown command). A command of more than `RESPBatch.argumentLimit`
    /// arguments is never sent: some servers refuse it, and a split belongs to its caller.
    public func pipeline(_ batch: RESPBatch, timeout: Duration? = nil) async throws(RedisError) -> [RESPValue] {
        if batch.isEmpty { return [] }
        if batch.widest > RESPBatch.argumentLimit {
            throw RedisError(
                .tooManyArguments,
                "a command of \(batch.widest) arguments was not sent to \(endpoint.address): at most \(RESPBatch.argumentLimit) are sent in one command",
                endpoint: endpoint.address)
        }
        if commandNames.isEmpty {
            return try await pipeline(encoded: batch.buffer(allocator: channel.allocator), count: batch.count, timeout: timeout)
        }
        let renamed = commandNames.apply(to: batch, allocator: channel.allocator)
        if renamed.local.isEmpty { return try await pipeline(encoded: renamed.buffer, count: renamed.count, timeout: timeout) }
        var sent: ArraySlice<RESPValue> = []
        if renamed.count > 0 { sent = try await pipeline(encoded: renamed.buffer, count: renamed.count, timeout: timeout)[...] }
        var replies: [RESPValue] = []
        replies.reserveCapacity(batch.count)
        for i in 0..<batch.count { replies.append(renamed.local[i] ?? sent.removeFirst()) }
        return replies
    }

    /// Sends `prefix` and then `batch` in one write, as two requests whose replies come back
    /// apart: a SELECT before a batch, without copying either into the other.
    public func pipeline(
        _ batch: RESPBatch, after prefix: RESPBatch, timeout: Duration? = nil
    ) async throws(RedisError) -> (prefix: [RESPValue], replies: [RESPValue]) {
        if prefix.isEmpty || batch.isEmpty || !commandNames.isEmpty || max(prefix.widest, batch.widest) > RESPBatch.argumentLimit {
            let both = RESPBatch(capacity: prefix.bytes.count + batch.bytes.count)
            both.append(prefix)
            both.append(batch)
            let replies = try await pipeline(both, timeout: timeout)
            return (Array(replies[..<prefix.count]), Array(replies[prefix.count...]))
        }
        let replies = try await send(
            [(prefix.buffer(allocator: channel.allocator), prefix.count), (batch.buffer(allocator: channel.allocator), batch.count)],
            timeout: timeout)
        return (replies[0], replies[1])
    }

    /// Sends `count` commands already encoded in `buffer`.
    func pipeline(encoded buffer: ByteBuffer, count: Int, timeout: Duration?) async throws(RedisError) -> [RESPValue] {
        try await send([(buffer, count)], timeout: timeout)[0]
    }

    /// Sends requests (commands already encoded, and how many) in one flush; the replies of each.
    private func send(_ requests: [(ByteBuffer, Int)], timeout: Duration?) async throws(RedisError) -> [[RESPValue]] {
        let limit = (timeout ?? requestTimeout).map { TimeAmount.nanoseconds(Self.nanoseconds($0)) }
        let address = endpoint.address
        let status = status
        let promises = requests.map { _ in channel.eventLoop.makePromise(of: [RESPValue].self) }
        for (n, (buffer, count)) in requests.enumerated() {
            let promise = promises[n]
            let request = RedisRequest(buffer: buffer, count: count, promise: promise, timeout: limit)
            let written = n == requests.count - 1 ? channel.writeAndFlush(request) : channel.write(request)
            written.whenFailure { error in
                // Writes on a closed channel never reach the handler; fail the request here with
                // the reason the connection closed. (Completing a promise twice is a no-op, so a
                // race with the handler is harmless.)
                promise.fail(status.closeError ?? RedisChannelHandler.classify(error, endpoint: address, tls: false))
            }
        }
        do {
            return try await withTaskCancellationHandler {
                var replies: [[RESPValue]] = []
                for p in promises { replies.append(try await p.futureResult.get()) }
                return replies
            } onCancel: {
                // Replies still due are read and dropped by the handler; the connection stays usable.
                for p in promises { p.fail(RedisError(.cancelled, "request to \(address) cancelled", endpoint: address)) }
            }
        } catch let e as RedisError {
            throw e
        } catch {
            throw RedisChannelHandler.classify(error, endpoint: address, tls: endpoint.tls)
        }
    }

    /// A connection dropped without `close()` still releases its socket.
    deinit { if ownsChannel { channel.close(promise: nil) } }

    public var isActive: Bool { channel.isActive }

    /// How long ago bytes last arrived on this connection (the connection's start if never).
    public var sinceLastRead: Duration { .nanoseconds((NIODeadline.now() - status.lastRead).nanoseconds) }

    /// Closes the connection; requests still waiting fail with `.connectionClosed`.
    public func close() async {
        try? await channel.close()
    }

    static func nanoseconds(_ d: Duration) -> Int64 {
        let (s, atto) = d.components
        return s.multipliedReportingOverflow(by: 1_000_000_000).overflow ? .max : s * 1_000_000_000 + atto / 1_000_000_000
    }

    private static func openChannel(
        to endpoint: RedisEndpoint, options: RedisConnectionOptions,
        status: ChannelStatus
    ) async throws(RedisError)
        -> any Channel
    {
        var chosenTLS: RedisTLS? = nil
        if endpoint.tls {
            if let given = options.tls { chosenTLS = given } else { chosenTLS = try RedisTLS() }
        }
        let tls = chosenTLS
        let address = endpoint.address
        let parser = options.parser
        let bootstrap = ClientBootstrap(group: options.eventLoopGroup)
            .connectTimeout(.nanoseconds(nanoseconds(options.connectTimeout)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls { try sync.addHandler(try tls.makeHandler(for: endpoint)) }
                    try sync.addHandler(
                        RedisChannelHandler(
                            endpoint: address, parser: parser, tls: tls != nil,
                            status: status))
                }
            }
        do {
            return try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get()
        } catch {
            throw connectError(error, endpoint: endpoint, timeout: options.connectTimeout)
        }
    }

    private static func isConnectTimeout(_ error: any Error) -> Bool {
        if case .connectTimeout = error as? ChannelError { return true }
        return false
    }

    static func connectError(_ error: any Error, endpoint: RedisEndpoint, timeout: Duration) -> RedisError {
        let address = endpoint.address
        if let e = error as? RedisError { return e }
        if let c = error as? NIOConnectionError {
            if c.connectionErrors.isEmpty, c.dnsAError != nil || c.dnsAAAAError != nil {
                return RedisError(.unresolvableHost, "cannot resolve host: \(address)", endpoint: address, underlying: error)
            }
            let errnos = c.connectionErrors.compactMap { ($0.error as? IOError)?.errnoCode }
            if !errnos.isEmpty, errnos.allSatisfy({ $0 == ECONNREFUSED }) {
                return RedisError(.connectionRefused, "connection refused: \(address)", endpoint: address, underlying: error)
            }
            if c.connectionErrors.contains(where: { Self.isConnectTimeout($0.error) }) {
                return RedisError(
                    .connectTimeout, "connect timeout after \(timeout): \(address)", endpoint: address,
                    underlying: error)
            }
        }
        if let io = error as? IOError, io.errnoCode == ECONNREFUSED {
            return RedisError(.connectionRefused, "connection refused: \(address)", endpoint: address, underlying: error)
        }
        if isConnectTimeout(error) {
            return RedisError(
                .connectTimeout, "connect timeout after \(timeout): \(address)", endpoint: address,
                underlying: error)
        }
        return RedisError(.connectionFailed, "cannot connect to \(address): \(error)", endpoint: address, underlying: error)
    }
}
