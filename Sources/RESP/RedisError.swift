import HashSlots

/// What went wrong talking to a server: a code to match on, a message for people (it names
/// the endpoint and never holds a password), and the error underneath when there is one.
public struct RedisError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let description: String
        private init(_ name: String) { description = name }

        public static let invalidEndpoint = Code("invalid endpoint")
        public static let unresolvableHost = Code("unresolvable host")
        public static let connectionRefused = Code("connection refused")
        public static let connectTimeout = Code("connect timeout")
        public static let connectionFailed = Code("connection failed")
        public static let connectionClosed = Code("connection closed")
        public static let requestTimeout = Code("request timeout")
        /// A request timed out before the TLS handshake was answered: the port may not speak TLS.
        public static let tlsHandshakeTimeout = Code("TLS handshake timeout")
        public static let cancelled = Code("cancelled")
        public static let tls = Code("TLS")
        public static let authenticationFailed = Code("authentication failed")
        public static let protocolError = Code("protocol error")
        /// The server answered with an error reply; `serverError` holds it.
        public static let serverError = Code("server error")
        public static let unexpectedReply = Code("unexpected reply")
        /// A command longer than `RESPBatch.argumentLimit`, refused before it was sent.
        public static let tooManyArguments = Code("too many arguments")
    }

    public var code: Code
    public var message: String
    /// `host:port` of the server involved, when there is one.
    public var endpoint: String?
    public var serverError: RedisServerError?
    public var underlying: (any Error)?

    public init(
        _ code: Code, _ message: String, endpoint: String? = nil,
        serverError: RedisServerError? = nil, underlying: (any Error)? = nil
    ) {
        self.code = code
        self.message = message
        self.endpoint = endpoint
        self.serverError = serverError
        self.underlying = underlying
    }

    /// An error reply raised as an error.
    public init(serverError: RedisServerError, endpoint: String? = nil) {
        self.init(.serverError, serverError.message, endpoint: endpoint, serverError: serverError)
    }

    /// A MOVED/ASK redirection carried by a server error.
    public var redirection: RedisRedirection? { serverError?.redirection }

    public var description: String { message }
}

/// An error reply: `-CODE message` (or a RESP3 bulk error). `code` is its first word.
public struct RedisServerError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) { self.message = message }

    /// `ERR`, `WRONGTYPE`, `NOAUTH`, `MOVED`, ...: the upper-case word that starts the message.
    public var code: String { String(message.prefix { $0 != " " }) }

    public var redirection: RedisRedirection? { RedisRedirection(parsing: message) }

    public var description: String { message }
}

/// A cluster redirection: `MOVED 3999 127.0.0.1:6381` (the slot lives there now) or
/// `ASK 3999 127.0.0.1:6381` (ask there once, after ASKING, while the slot migrates).
/// An empty `host` means "the host you already asked" (the server does not know its own
/// address for clients).
public struct RedisRedirection: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable { case moved = "MOVED", ask = "ASK" }

    public var kind: Kind
    public var slot: HashSlot
    public var host: String
    public var port: Int

    public init(kind: Kind, slot: HashSlot, host: String, port: Int) {
        self.kind = kind
        self.slot = slot
        self.host = host
        self.port = port
    }

    /// Parses `MOVED|ASK <slot> <host>:<port>`; the host may be an IPv6 address (split at
    /// the last colon) or empty.
    public init?(parsing message: String) {
        let parts = message.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, let kind = Kind(rawValue: String(parts[0])),
            let slotNumber = UInt16(parts[1]), let slot = HashSlot(rawValue: slotNumber)
        else { return nil }
        let address = parts[2]
        guard let colon = address.lastIndex(of: ":"),
            let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port)
        else { return nil }
        var host = String(address[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.init(kind: kind, slot: slot, host: host, port: port)
    }

    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(kind.rawValue) \(slot) \(h):\(port)"
    }
}
