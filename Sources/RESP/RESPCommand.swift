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
/// clients in both protocol versions (with `RESPBatch`, which pipelines built in hot loops use
/// directly).
public enum RESPEncoder {
    public static func encode(_ command: [RESPArg], into buffer: inout ByteBuffer) {
        let batch = RESPBatch(capacity: size([command]))
        batch.command(command)
        buffer.writeBytes(batch.bytes)
    }

    public static func encode(_ commands: [[RESPArg]], allocator: ByteBufferAllocator = .init()) -> ByteBuffer {
        let batch = RESPBatch(capacity: size(commands))
        for c in commands { batch.command(c) }
        return batch.buffer(allocator: allocator)
    }

    /// Room enough for the commands encoded.
    static func size(_ commands: [[RESPArg]]) -> Int {
        commands.reduce(0) { $0 + 16 + $1.reduce(0) { $0 + 16 + $1.bytes.count } }
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

/// Commands encoded straight into one buffer as they are added, for pipelines built in hot
/// loops: no array per command or per argument. `begin(n)` starts a command of `n`
/// arguments, then `arg` adds each of them. The bytes are kept in memory of its own and
/// become one `ByteBuffer` when sent.
// Unchecked: a batch is built by one task and handed over whole when it is sent; its raw buffer
// and `@exclusivity(unchecked)` counters (the per-argument hot path) are never shared while built.
public final class RESPBatch: @unchecked Sendable {
    @exclusivity(unchecked) private var base: UnsafeMutableRawPointer
    @exclusivity(unchecked) private var capacity: Int
    @exclusivity(unchecked) private var length = 0
    /// Commands added.
    @exclusivity(unchecked) public private(set) var count = 0
    /// The most arguments (the name included) of one command added.
    @exclusivity(unchecked) public private(set) var widest = 0

    /// The most arguments one command may carry: ElastiCache Serverless refuses a request of
    /// more than 3,999, so commands built from a variable number of keys or fields are split
    /// to fit, and a connection sends none wider (`RedisConnection.pipeline`).
    public static let argumentLimit = 3999

    /// Each command is preceded by ASKING (cluster: a slot being imported), whose `+OK`
    /// replies the caller drops: every other reply, starting with the first.
    public let asking: Bool

    public init(capacity: Int = 4096, asking: Bool = false) {
        self.capacity = max(64, capacity)
        base = .allocate(byteCount: self.capacity, alignment: 8)
        self.asking = asking
    }

    deinit { base.deallocate() }

    public var isEmpty: Bool { count == 0 }

    /// The encoded commands.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: length) }

    public func buffer(allocator: ByteBufferAllocator = .init()) -> ByteBuffer {
        var b = allocator.buffer(capacity: length)
        b.writeBytes(bytes)
        return b
    }

    /// Room for `n` more bytes; returns where they go.
    @inline(__always)
    private func reserve(_ n: Int) -> UnsafeMutableRawPointer {
        if length + n > capacity {
            var c = capacity * 2
            while c < length + n { c *= 2 }
            let p = UnsafeMutableRawPointer.allocate(byteCount: c, alignment: 8)
            p.copyMemory(from: base, byteCount: length)
            base.deallocate()
            base = p
            capacity = c
        }
        return base + length
    }

    public func begin(_ arguments: Int) {
        if asking {
            let asking: StaticString = "*1\r\n$6\r\nASKING\r\n"
            reserve(asking.utf8CodeUnitCount).copyMemory(from: asking.utf8Start, byteCount: asking.utf8CodeUnitCount)
            length += asking.utf8CodeUnitCount
            count += 1
        }
        let p = reserve(24)
        p.storeBytes(of: UInt8(ascii: "*"), as: UInt8.self)
        length += 1 + Self.decimalLine(arguments, at: p + 1)
        count += 1
        if arguments > widest { widest = arguments }
    }

    /// Starts a command of `arguments` arguments with `words`, its first ones.
    public func begin(_ arguments: Int, _ words: RESPWords) {
        begin(arguments)
        args(words)
    }

    /// Adds arguments encoded beforehand.
    public func args(_ words: RESPWords) {
        let n = words.encoded.count
        words.encoded.withUnsafeBytes { reserve(n).copyMemory(from: $0.baseAddress!, byteCount: n) }
        length += n
    }

    /// Adds another batch's commands after these.
    public func append(_ other: RESPBatch) {
        let b = other.bytes
        if b.count > 0 { reserve(b.count).copyMemory(from: b.baseAddress!, byteCount: b.count) }
        length += b.count
        count += other.count
        widest = max(widest, other.widest)
    }

    public func arg(_ a: RESPArg) { arg(a.bytes) }

    public func arg(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { arg(raw: $0) }
    }

    /// One bulk string: `$len`, the bytes, CRLF.
    public func arg(raw bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        let p = reserve(n + 26)
        p.storeBytes(of: UInt8(ascii: "$"), as: UInt8.self)
        var i = 1 + Self.decimalLine(n, at: p + 1)
        if n > 0 { Self.copy(bytes.baseAddress!, n, to: p + i) }
        i += n
        p.storeBytes(of: 13, toByteOffset: i, as: UInt8.self)
        p.storeBytes(of: 10, toByteOffset: i + 1, as: UInt8.self)
        length += i + 2
    }

    public func arg(_ number: Int) {
        let p = reserve(48)
        let len = Self.decimal(number, at: p + 24)  // the text first, then its length before it
        p.storeBytes(of: UInt8(ascii: "$"), as: UInt8.self)
        var i = 1 + Self.decimalLine(len, at: p + 1)
        (p + i).copyMemory(from: p + 24, byteCount: len)
        i += len
        p.storeBytes(of: 13, toByteOffset: i, as: UInt8.self)
        p.storeBytes(of: 10, toByteOffset: i + 1, as: UInt8.self)
        length += i + 2
    }

    /// A whole command from its arguments.
    public func command(_ arguments: [RESPArg]) {
        begin(arguments.count)
        for a in arguments { arg(a) }
    }

    /// Copies `n` (> 0) bytes; up to 32 as overlapping words, without a call: most
    /// arguments are keys and command names of a few dozen bytes.
    @inline(__always)
    static func copy(_ from: UnsafeRawPointer, _ n: Int, to p: UnsafeMutableRawPointer) {
        if n >= 8 && n <= 16 {
            p.storeBytes(of: from.loadUnaligned(as: UInt64.self), as: UInt64.self)
            p.storeBytes(of: from.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self), toByteOffset: n - 8, as: UInt64.self)
        } else if n > 16 && n <= 32 {
            let a = from.loadUnaligned(as: UInt64.self), b = from.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
            let c = from.loadUnaligned(fromByteOffset: n - 16, as: UInt64.self)
            let d = from.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            p.storeBytes(of: a, as: UInt64.self)
            p.storeBytes(of: b, toByteOffset: 8, as: UInt64.self)
            p.storeBytes(of: c, toByteOffset: n - 16, as: UInt64.self)
            p.storeBytes(of: d, toByteOffset: n - 8, as: UInt64.self)
        } else {
            p.copyMemory(from: from, byteCount: n)
        }
    }

    /// Writes `n` in decimal at `p`; returns the number of bytes written (at most 20).
    @inline(__always)
    static func decimal(_ n: Int, at p: UnsafeMutableRawPointer) -> Int {
        // Lengths and argument counts are mostly one or two digits.
        if n >= 0 && n < 10 {
            p.storeBytes(of: UInt8(truncatingIfNeeded: 48 + n), as: UInt8.self)
            return 1
        }
        if n >= 10 && n < 100 {
            p.storeBytes(of: UInt8(truncatingIfNeeded: 48 + n / 10), as: UInt8.self)
            p.storeBytes(of: UInt8(truncatingIfNeeded: 48 + n % 10), toByteOffset: 1, as: UInt8.self)
            return 2
        }
        var v = n.magnitude
        var digits = 1
        var t = v
        while t >= 10 { t /= 10; digits += 1 }
        let sign = n < 0 ? 1 : 0
        if sign == 1 { p.storeBytes(of: UInt8(ascii: "-"), as: UInt8.self) }
        var k = sign + digits - 1
        repeat {
            p.storeBytes(of: UInt8(48 + v % 10), toByteOffset: k, as: UInt8.self)
            v /= 10
            k -= 1
        } while v > 0
        return sign + digits
    }

    /// `n` in decimal and CRLF at `p`; returns the bytes written.
    @inline(__always)
    static func decimalLine(_ n: Int, at p: UnsafeMutableRawPointer) -> Int {
        let d = decimal(n, at: p)
        p.storeBytes(of: 13, toByteOffset: d, as: UInt8.self)
        p.storeBytes(of: 10, toByteOffset: d + 1, as: UInt8.self)
        return d + 2
    }
}

/// Constant arguments (a command's name, fixed options) encoded once: pipelines built per key
/// add them with one copy instead of encoding each again.
public struct RESPWords: Sendable {
    public let encoded: [UInt8]

    public init(_ words: RESPArg...) {
        let batch = RESPBatch(capacity: 64)
        for w in words { batch.arg(w) }
        encoded = Array(batch.bytes)
    }
}
