import NIOCore

/// One argument of a command: binary-safe bytes. Keys are passed as bytes (`RESPArg(key)`
/// with `[UInt8]` or `ByteBuffer`), never through `String`; text and numbers convert for
/// command names and options.
public struct RESPArg: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    CustomStringConvertible
{
    public var bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public init(_ bytes: ArraySlice<UInt8>) { self.bytes = Array(bytes) }
    public init(_ buffer: ByteBuffer) { self.bytes = Array(buffer.readableBytesView) }
    public init(_ text: String) { self.bytes = Array(text.utf8) }
    public init(_ number: some BinaryInteger) { self.bytes = Array(String(number).utf8) }
    public init(stringLiteral value: String) { self.init(value) }
    public init(integerLiteral value: Int) { self.init(value) }

    /// The argument as text with non-printable bytes escaped, cut at 64 bytes.
    /// Never use it on a command that carries a password (`RESPCommand.redacted`).
    public var description: String {
        let shown = bytes.prefix(64).map { c in
            (0x20..<0x7F).contains(c) ? String(UnicodeScalar(c)) : "\\x" + (c < 16 ? "0" : "") + String(c, radix: 16)
        }.joined()
        return bytes.count > 64 ? shown + "…" : shown
    }
}

/// Encodes commands as RESP arrays of bulk strings, the only form servers accept from
/// clients in both protocol versions.
public enum RESPEncoder {
    public static func encode(_ command: [RESPArg], into buffer: inout ByteBuffer) {
        var size = 1 + digits(command.count) + 2
        for arg in command { size += 1 + digits(arg.bytes.count) + 2 + arg.bytes.count + 2 }
        // One bounds check and one write for the whole command.
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            let p = out.baseAddress!
            var i = 0
            func put(_ b: UInt8) { p.storeBytes(of: b, toByteOffset: i, as: UInt8.self); i += 1 }
            func putDecimal(_ n: Int) {
                let d = digits(n)
                var v = n
                for k in stride(from: d - 1, through: 0, by: -1) {
                    p.storeBytes(of: UInt8(48 + v % 10), toByteOffset: i + k, as: UInt8.self)
                    v /= 10
                }
                i += d
                put(13); put(10)
            }
            put(UInt8(ascii: "*"))
            putDecimal(command.count)
            for arg in command {
                put(UInt8(ascii: "$"))
                putDecimal(arg.bytes.count)
                arg.bytes.withUnsafeBytes { b in
                    if b.count > 0 { (p + i).copyMemory(from: b.baseAddress!, byteCount: b.count) }
                }
                i += arg.bytes.count
                put(13); put(10)
            }
            return i
        }
    }

    public static func encode(_ commands: [[RESPArg]], allocator: ByteBufferAllocator = .init()) -> ByteBuffer {
        let size = commands.reduce(0) { $0 + 16 + $1.reduce(0) { $0 + 16 + $1.bytes.count } }
        var buffer = allocator.buffer(capacity: size)
        for c in commands { encode(c, into: &buffer) }
        return buffer
    }

    @inline(__always)
    static func digits(_ n: Int) -> Int {
        var d = 1
        var v = n
        while v >= 10 { v /= 10; d += 1 }
        return d
    }
}

/// Commands whose arguments hold secrets, shown without them in logs and errors.
public enum RESPCommand {
    /// The command with every argument after the name replaced by `***` when the command
    /// can carry a password (AUTH, HELLO, MIGRATE, CONFIG SET, ACL SETUSER).
    public static func redacted(_ command: [RESPArg]) -> String {
        guard let name = command.first else { return "" }
        let upper = String(decoding: name.bytes, as: UTF8.self).uppercased()
        let secret: Set<String> = ["AUTH", "HELLO", "MIGRATE", "CONFIG", "ACL"]
        if secret.contains(upper) { return upper + (command.count > 1 ? " ***" : "") }
        return command.map(\.description).joined(separator: " ")
    }
}
