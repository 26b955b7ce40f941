import NIOCore

/// Commands renamed on a server (`rename-command OLD NEW` in its configuration): the name each
/// command is sent under there, and which are disabled (renamed to ""). A connection applies
/// them to every command it sends, in one place (`RedisConnection.pipeline`), so no caller
/// spells a server's own names and none can forget to.
public struct CommandNames: Sendable, Hashable {
    /// Upper-case command name → the name the server knows it by; "" when it is disabled.
    public private(set) var renamed: [String: String] = [:]

    public init() {}

    /// `renamed` maps a command name (any case) to the name sent, "" for a disabled command.
    public init(_ renamed: [String: String]) {
        for (old, new) in renamed { self.renamed[old.uppercased()] = new }
    }

    public var isEmpty: Bool { renamed.isEmpty }

    /// Whether `command` (its first word) is disabled on this server: it is never sent.
    public func isDisabled(_ command: String) -> Bool { renamed[command.uppercased()] == "" }

    /// The name `command` is sent under, when it is renamed to another (non-empty) name.
    public func renaming(_ command: String) -> String? {
        renamed[command.uppercased()].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The reply a disabled command gets in place of being sent. It reads as a server's own
    /// "unknown command", so every caller handles it as a command this server lacks: a read
    /// plan falls back, anything else ends the check naming the command.
    public static func disabledReply(_ command: String) -> RedisServerError {
        RedisServerError("ERR unknown command '\(command)': disabled on this server (renamed to \"\"), not sent")
    }

    /// `batch` with every command name renamed; the commands disabled here are left out.
    /// Returns the bytes to send, how many commands they hold, and the replies of those left
    /// out by their position in `batch` (an ASKING right before a disabled command is left
    /// out too, answered OK, so that it does not apply to the next command sent).
    func apply(to batch: RESPBatch, allocator: ByteBufferAllocator) -> (buffer: ByteBuffer, count: Int, local: [Int: RESPValue]) {
        let bytes = batch.bytes
        var out = allocator.buffer(capacity: bytes.count + 64)
        var local: [Int: RESPValue] = [:]
        var sent = 0
        var at = 0
        var index = 0
        // Where the last ASKING sent began, to take it back when its command is not sent.
        var pendingAsking: (start: Int, index: Int)?
        while at < bytes.count {
            let start = at
            let outStart = out.writerIndex
            let arguments = Self.number(bytes, after: &at)  // "*N\r\n"
            let nameStart = at
            let nameLength = Self.number(bytes, after: &at)  // "$len\r\n"
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[at..<(at + nameLength)]), as: UTF8.self)
            at += nameLength + 2
            let afterName = at
            for _ in 1..<max(1, arguments) {
                let length = Self.number(bytes, after: &at)
                at += length + 2
            }
            let upper = name.uppercased()
            if let new = renamed[upper], new.isEmpty {
                local[index] = .error(Self.disabledReply(upper))
                if let a = pendingAsking, a.index == index - 1 {
                    out.moveWriterIndex(to: a.start)
                    local[a.index] = .simpleString(ByteBuffer(string: "OK"))
                    sent -= 1
                }
            } else if let new = renamed[upper] {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start..<nameStart]))
                out.writeString("$\(new.utf8.count)\r\n\(new)\r\n")
                out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[afterName..<at]))
                sent += 1
            } else {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start..<at]))
                sent += 1
            }
            pendingAsking = upper == "ASKING" && local[index] == nil ? (start: outStart, index: index) : nil
            index += 1
        }
        return (out, sent, local)
    }

    /// Reads the decimal number after a type byte (`*` or `$`) at `at` and the CRLF after it.
    private static func number(_ bytes: UnsafeRawBufferPointer, after at: inout Int) -> Int {
        at += 1
        var n = 0
        while bytes[at] != 13 {
            n = n * 10 + Int(bytes[at] - 48)
            at += 1
        }
        at += 2
        return n
    }
}
