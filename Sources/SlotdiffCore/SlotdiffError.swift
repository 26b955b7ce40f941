/// Why a check could not be done (exit 2), as one type with structured fields: what kind of
/// failure (`code`), where (the endpoint, or the file and offset), the command a server refused,
/// and a message for people that names all of it (and never holds a password). Lower layers
/// keep their own typed errors (`RedisError` in RESP, `RDBError` in RDB); the engine turns them
/// into this one on the way up.
public struct SlotdiffError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable, CaseIterable {
        /// Options that cannot work together, or not with these sides.
        case usage
        /// A server could not be reached, or stayed away.
        case connection
        /// A server refused a command the check needs (ACL, rename-command, unknown).
        case refused
        /// A server answered something the check cannot read, or kept changing under it.
        case unexpectedReply = "unexpected_reply"
        /// A dump file (or a DUMP payload) that is not what it should be.
        case corruptInput = "corrupt_input"
        /// A file that cannot be read or written.
        case io
        /// Neither side held a key, and an empty check was not allowed.
        case nothingCompared = "nothing_compared"
        /// The counts contradict each other: keys were lost track of.
        case inconsistent
        /// Stopped (Ctrl-C, SIGTERM) with passes left to `--resume`.
        case interrupted
    }

    public var code: Code
    public var message: String
    /// The server involved, as `host:port`.
    public var endpoint: String?
    /// The file involved, and the byte offset in it where that is known.
    public var file: String?
    public var offset: Int64?
    /// The command a server refused.
    public var command: String?

    public init(
        _ code: Code, _ message: String, endpoint: String? = nil, file: String? = nil, offset: Int64? = nil,
        command: String? = nil
    ) {
        self.code = code
        self.message = message
        self.endpoint = endpoint
        self.file = file
        self.offset = offset
        self.command = command
    }

    public var description: String { message }
}
