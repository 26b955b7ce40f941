import NIOCore

/// Malformed input: what was wrong and where (byte offset from the start of the reply).
public struct RESPParseError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public var offset: Int

    public init(_ reason: String, at offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    public var description: String { "malformed RESP at byte \(offset): \(reason)" }
}

/// Reads RESP2/RESP3 replies from a byte buffer in two phases: `scan` checks, without
/// allocating, that one whole well-formed value is in the buffer (nil: need more bytes);
/// only then is it decoded and consumed. A buffer is never left half-read, whatever the input.
public struct RESPParser: Sendable {
    /// Deepest nesting of aggregates accepted (a top-level array is depth 1).
    public var maxDepth: Int
    /// Longest bulk string accepted (Redis' own `proto-max-bulk-len` default is 512 MiB).
    public var maxBulkLength: Int
    /// Longest line (simple string, error, number) accepted before its CRLF.
    public var maxLineLength: Int

    public init(maxDepth: Int = 64, maxBulkLength: Int = 512 << 20, maxLineLength: Int = 1 << 20) {
        self.maxDepth = maxDepth
        self.maxBulkLength = maxBulkLength
        self.maxLineLength = maxLineLength
    }

    /// Reads one value from the front of `buffer`; returns nil and leaves `buffer` untouched
    /// when the value is not complete yet.
    public func parse(_ buffer: inout ByteBuffer) throws(RESPParseError) -> RESPValue? {
        var value: RESPValue?
        try parseEach(&buffer) { v in
            value = v
            return false
        }
        return value
    }

    /// Reads the whole values at the front of `buffer` one after the other, handing each to
    /// `body` until it returns false; the bytes of those handed over are consumed. Thrown for
    /// malformed input once the values before it are handed over and consumed.
    /// The buffer's bytes are reached once for all of them (each reach into a `ByteBuffer`
    /// from this package's code is checked for exclusive access at run time). The replies most
    /// commands get (a bulk string, an integer, a status) are checked and decoded in one pass;
    /// aggregates are measured whole first, then decoded.
    public func parseEach(_ buffer: inout ByteBuffer, _ body: (consuming RESPValue) -> Bool) throws(RESPParseError) {
        let whole = buffer
        var consumed = 0
        var failure: RESPParseError?
        whole.withUnsafeReadableBytes { all in
            while consumed < all.count {
                let bytes = UnsafeRawBufferPointer(rebasing: all[consumed...])
                let origin = whole.readerIndex + consumed
                let value: RESPValue
                let end: Int
                do {
                    switch try single(bytes) {
                    case .incomplete:
                        return
                    case .bulk(let start, let n, let e):
                        value = .bulkString(whole.getSlice(at: origin + start, length: n)!)
                        end = e
                    case .simple(let n, let e):
                        value = .simpleString(whole.getSlice(at: origin + 1, length: n)!)
                        end = e
                    case .value(let v, let e):
                        value = v
                        end = e
                    case .other:
                        guard let e = try scan(bytes, at: 0, depth: 0) else { return }
                        var decoder = Decoder(bytes: bytes, buffer: whole, origin: origin)
                        value = decoder.value()
                        end = e
                    }
                } catch {
                    failure = error as? RESPParseError
                    return
                }
                consumed += end
                if !body(consume value) { return }
            }
        }
        buffer.moveReaderIndex(forwardBy: consumed)
        if let failure { throw failure }
    }

    /// How many more bytes the value at the front of `buffer` needs, where what has arrived
    /// tells: a bulk string whose length line is in. nil when it is complete or not known.
    public func missingBytes(_ buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            guard bytes.first == UInt8(ascii: "$"),
                let (lineEnd, next) = try? line(bytes, from: 1),
                let n = try? length(UnsafeRawBufferPointer(rebasing: bytes[1..<lineEnd]), at: 1, nullable: true), n >= 0
            else { return nil }
            let end = next + n + 2
            return end > bytes.count ? end - bytes.count : nil
        }
    }

    private enum Front {
        /// A bulk string's content at `start`, `n` bytes; the reply ends at `end`.
        case bulk(start: Int, n: Int, end: Int)
        /// A simple string's content, `n` bytes after its type byte.
        case simple(n: Int, end: Int)
        case value(RESPValue, end: Int)
        case incomplete
        /// An aggregate or a rarer type: the two-phase path.
        case other
    }

    /// A bulk string, integer or simple string at the front of `bytes`, checked and measured.
    private func single(_ bytes: UnsafeRawBufferPointer) throws(RESPParseError) -> Front {
        guard let type = bytes.first else { return .incomplete }
        guard type == UInt8(ascii: "$") || type == UInt8(ascii: ":") || type == UInt8(ascii: "+") else { return .other }
        if type != UInt8(ascii: "+"), let front = digits(bytes, bulk: type == UInt8(ascii: "$")) { return front }
        guard let (lineEnd, next) = try line(bytes, from: 1) else { return .incomplete }
        let text = UnsafeRawBufferPointer(rebasing: bytes[1..<lineEnd])
        switch type {
        case UInt8(ascii: "$"):
            guard let (n, end) = try bulk(bytes, text: text, next: next, type: type) else { return .incomplete }
            if n < 0 { return .value(.null, end: end) }
            return .bulk(start: next, n: n, end: end)
        case UInt8(ascii: ":"):
            return .value(.integer(try Self.integer(text, at: 1)), end: next)
        default:
            return .simple(n: lineEnd - 1, end: next)
        }
    }

    /// The common case of a length or integer line, read in one pass: up to 18 digits (no
    /// sign) and a CRLF, all arrived, and for a bulk string its content and CRLF too. nil for
    /// anything else, which the general path reads (and refuses, where it is malformed).
    @inline(__always)
    private func digits(_ bytes: UnsafeRawBufferPointer, bulk: Bool) -> Front? {
        let limit = Swift.min(bytes.count, 19)
        var i = 1
        var n = 0
        while i < limit {
            let d = bytes[i] &- UInt8(ascii: "0")
            if d >= 10 { break }
            n = n &* 10 &+ Int(d)
            i += 1
        }
        guard i > 1, i + 1 < bytes.count, bytes[i] == 13, bytes[i + 1] == 10 else { return nil }
        let next = i + 2
        if !bulk { return .value(.integer(Int64(n)), end: next) }
        guard n <= maxBulkLength, next + n + 2 <= bytes.count, bytes[next + n] == 13, bytes[next + n + 1] == 10 else { return nil }
        return .bulk(start: next, n: n, end: next + n + 2)
    }

    // MARK: phase 1: validate and measure

    /// The offset just past the value starting at `start`, or nil when it is incomplete.
    func scan(_ bytes: UnsafeRawBufferPointer, at start: Int, depth: Int) throws(RESPParseError) -> Int? {
        guard start < bytes.count else { return nil }
        let type = bytes[start]
        // Keys and members in a SCAN or LRANGE reply: the one-pass path first.
        if type == UInt8(ascii: "$") || type == UInt8(ascii: ":") {
            switch digits(UnsafeRawBufferPointer(rebasing: bytes[start...]), bulk: type == UInt8(ascii: "$")) {
            case .bulk(_, _, let end)?, .value(_, let end)?: return start + end
            default: break
            }
        }
        guard let (lineEnd, next) = try line(bytes, from: start + 1) else { return nil }
        let text = UnsafeRawBufferPointer(rebasing: bytes[(start + 1)..<lineEnd])
        switch type {
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            return next
        case UInt8(ascii: ":"):
            _ = try Self.integer(text, at: start + 1)
            return next
        case UInt8(ascii: "_"):
            guard text.isEmpty else { throw RESPParseError("null with content", at: start + 1) }
            return next
        case UInt8(ascii: "#"):
            guard text.count == 1, text[0] == UInt8(ascii: "t") || text[0] == UInt8(ascii: "f") else {
                throw RESPParseError("boolean is not t or f", at: start + 1)
            }
            return next
        case UInt8(ascii: ","):
            _ = try Self.double(text, at: start + 1)
            return next
        case UInt8(ascii: "("):
            try Self.checkBigNumber(text, at: start + 1)
            return next
        case UInt8(ascii: "$"), UInt8(ascii: "!"), UInt8(ascii: "="):
            guard let (n, end) = try bulk(bytes, text: text, next: next, type: type, at: start) else { return nil }
            if type == UInt8(ascii: "="), n < 4 || bytes[next + 3] != UInt8(ascii: ":") {
                throw RESPParseError("verbatim string without a 3-byte format and ':'", at: next)
            }
            return end
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
            let n = try length(text, at: start + 1, nullable: type == UInt8(ascii: "*"))
            guard n >= 0 else { return next }
            guard depth < maxDepth else {
                throw RESPParseError("nesting deeper than \(maxDepth) levels", at: start)
            }
            let elements = (type == UInt8(ascii: "%") || type == UInt8(ascii: "|")) ? n * 2 : n
            var offset = next
            for _ in 0..<elements {
                guard let end = try scan(bytes, at: offset, depth: depth + 1) else { return nil }
                offset = end
            }
            // An attribute annotates the value that follows it: both are one unit.
            if type == UInt8(ascii: "|") { return try scan(bytes, at: offset, depth: depth) }
            return offset
        default:
            throw RESPParseError("unknown type byte \(Self.show(type))", at: start)
        }
    }

    /// A bulk string (`$`, `!`, `=`) whose length line `text` starts at `start` and whose
    /// content starts at `next`: its length (-1: null) and the offset past it; nil when it
    /// has not all arrived.
    @inline(__always)
    private func bulk(
        _ bytes: UnsafeRawBufferPointer, text: UnsafeRawBufferPointer, next: Int, type: UInt8, at start: Int = 0
    ) throws(RESPParseError) -> (Int, Int)? {
        let n = try length(text, at: start + 1, nullable: type == UInt8(ascii: "$"))
        guard n >= 0 else { return (n, next) }
        guard n <= maxBulkLength else {
            throw RESPParseError("bulk length \(n) exceeds the limit of \(maxBulkLength)", at: start + 1)
        }
        let end = next + n
        guard bytes.count >= end + 2 else { return nil }
        guard bytes[end] == 13, bytes[end + 1] == 10 else {
            throw RESPParseError("bulk string of \(n) bytes not followed by CRLF", at: end)
        }
        return (n, end + 2)
    }

    /// The line starting at `from`: (index of its CR, index after its LF), or nil when the
    /// CRLF has not arrived yet.
    private func line(_ bytes: UnsafeRawBufferPointer, from: Int) throws(RESPParseError) -> (Int, Int)? {
        var i = from
        let limit = Swift.min(bytes.count, from + maxLineLength + 1)
        while i < limit {
            let c = bytes[i]
            if c == 13 {
                guard i + 1 < bytes.count else { return nil }
                guard bytes[i + 1] == 10 else { throw RESPParseError("CR not followed by LF", at: i) }
                return (i, i + 2)
            }
            if c == 10 { throw RESPParseError("LF without CR", at: i) }
            i += 1
        }
        if i - from > maxLineLength {
            throw RESPParseError("line longer than \(maxLineLength) bytes", at: from)
        }
        return nil
    }

    private func length(_ text: UnsafeRawBufferPointer, at offset: Int, nullable: Bool) throws(RESPParseError) -> Int {
        if text.first == UInt8(ascii: "?") {
            throw RESPParseError("streamed RESP3 strings and aggregates are not supported", at: offset)
        }
        let n = try Self.integer(text, at: offset)
        if n == -1 && nullable { return -1 }
        guard n >= 0, n <= Int64(Int32.max) else { throw RESPParseError("invalid length \(n)", at: offset) }
        return Int(n)
    }

    static func integer(_ text: UnsafeRawBufferPointer, at offset: Int) throws(RESPParseError) -> Int64 {
        var i = 0
        var negative = false
        if let c = text.first, c == UInt8(ascii: "-") || c == UInt8(ascii: "+") {
            negative = c == UInt8(ascii: "-")
            i = 1
        }
        guard i < text.count else { throw RESPParseError("empty number", at: offset) }
        if text.count - i <= 18 {
            // Up to 18 digits cannot overflow: no overflow check per digit.
            var value: Int64 = 0
            while i < text.count {
                let d = text[i] &- UInt8(ascii: "0")
                guard d < 10 else { throw RESPParseError("invalid digit \(show(text[i])) in a number", at: offset + i) }
                value = value &* 10 &+ Int64(d)
                i += 1
            }
            return negative ? -value : value
        }
        var value: Int64 = 0
        while i < text.count {
            let d = text[i] &- UInt8(ascii: "0")
            guard d < 10 else { throw RESPParseError("invalid digit \(show(text[i])) in a number", at: offset + i) }
            // Accumulate negatively so Int64.min parses.
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.subtractingReportingOverflow(Int64(d))
            guard !o1, !o2 else { throw RESPParseError("integer out of 64-bit range", at: offset) }
            value = s
            i += 1
        }
        if negative { return value }
        guard value != .min else { throw RESPParseError("integer out of 64-bit range", at: offset) }
        return -value
    }

    static func double(_ text: UnsafeRawBufferPointer, at offset: Int) throws(RESPParseError) -> Double {
        let s = String(decoding: text, as: UTF8.self)
        switch s.lowercased() {
        case "inf", "+inf": return .infinity
        case "-inf": return -.infinity
        case "nan", "-nan": return .nan
        default: break
        }
        guard !text.isEmpty, text.allSatisfy(doubleCharacters.contains), let d = Double(s) else {
            throw RESPParseError("invalid double \"\(s.prefix(40))\"", at: offset)
        }
        return d
    }

    private static let doubleCharacters = Set("0123456789+-.eE".utf8)

    static func checkBigNumber(_ text: UnsafeRawBufferPointer, at offset: Int) throws(RESPParseError) {
        var digits = text[...]
        if let c = digits.first, c == UInt8(ascii: "-") || c == UInt8(ascii: "+") { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.allSatisfy({ $0 &- UInt8(ascii: "0") < 10 }) else {
            throw RESPParseError("invalid big number", at: offset)
        }
    }

    static func show(_ c: UInt8) -> String {
        (0x21..<0x7F).contains(c) ? "'\(Character(UnicodeScalar(c)))'" : "0x" + String(c, radix: 16)
    }

    // MARK: phase 2: decode a value already known to be whole and well formed

    private struct Decoder {
        let bytes: UnsafeRawBufferPointer
        let buffer: ByteBuffer
        /// Where `bytes` start in `buffer`'s storage indexes.
        var origin: Int
        var offset = 0

        init(bytes: UnsafeRawBufferPointer, buffer: ByteBuffer, origin: Int) {
            self.bytes = bytes
            self.buffer = buffer
            self.origin = origin
        }

        mutating func lineText() -> UnsafeRawBufferPointer {
            let start = offset
            while bytes[offset] != 13 { offset += 1 }
            defer { offset += 2 }
            return UnsafeRawBufferPointer(rebasing: bytes[start..<offset])
        }

        mutating func slice(_ n: Int) -> ByteBuffer {
            defer { offset += n + 2 }
            return buffer.getSlice(at: origin + offset, length: n)!
        }

        /// A length line `scan` accepted: an optional sign, digits, CRLF.
        mutating func count() -> Int {
            let negative = bytes[offset] == UInt8(ascii: "-")
            if negative || bytes[offset] == UInt8(ascii: "+") { offset += 1 }
            var n = 0
            while bytes[offset] != 13 {
                n = n &* 10 &+ Int(bytes[offset] &- UInt8(ascii: "0"))
                offset += 1
            }
            offset += 2
            return negative ? -n : n
        }

        mutating func values(_ n: Int) -> [RESPValue] {
            var out: [RESPValue] = []
            out.reserveCapacity(Swift.min(n, 4096))
            for _ in 0..<n { out.append(value()) }
            return out
        }

        mutating func value() -> RESPValue {
            let type = bytes[offset]
            offset += 1
            switch type {
            case UInt8(ascii: "+"):
                let start = offset
                let n = lineText().count
                return .simpleString(buffer.getSlice(at: origin + start, length: n)!)
            case UInt8(ascii: "-"):
                return .error(RedisServerError(String(decoding: lineText(), as: UTF8.self)))
            case UInt8(ascii: ":"):
                return .integer((try? RESPParser.integer(lineText(), at: 0))!)
            case UInt8(ascii: "_"):
                offset += 2
                return .null
            case UInt8(ascii: "#"):
                return .boolean(lineText()[0] == UInt8(ascii: "t"))
            case UInt8(ascii: ","):
                return .double((try? RESPParser.double(lineText(), at: 0))!)
            case UInt8(ascii: "("):
                return .bigNumber(String(decoding: lineText(), as: UTF8.self))
            case UInt8(ascii: "$"):
                let n = count()
                return n < 0 ? .null : .bulkString(slice(n))
            case UInt8(ascii: "!"):
                return .error(RedisServerError(String(buffer: slice(count()))))
            case UInt8(ascii: "="):
                var content = slice(count())
                let format = content.readString(length: 3)!
                content.moveReaderIndex(forwardBy: 1)
                return .verbatimString(format: format, content)
            case UInt8(ascii: "*"):
                let n = count()
                return n < 0 ? .null : .array(values(n))
            case UInt8(ascii: "~"):
                return .set(values(count()))
            case UInt8(ascii: ">"):
                return .push(values(count()))
            case UInt8(ascii: "%"):
                let n = count()
                var pairs: [RESPPair] = []
                pairs.reserveCapacity(Swift.min(n, 4096))
                for _ in 0..<n { pairs.append(RESPPair(value(), value())) }
                return .map(pairs)
            case UInt8(ascii: "|"):
                for _ in 0..<(count() * 2) { _ = value() }
                return value()
            default:
                preconditionFailure("decoding a value that scan did not accept")
            }
        }
    }
}
