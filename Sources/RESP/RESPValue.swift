import NIOCore

/// One reply from a server, RESP2 or RESP3.
///
/// Strings stay bytes (`ByteBuffer` slices of the read buffer, so DUMP payloads are never
/// copied or transcoded); `string` and `bytes` convert when a caller wants them. RESP2's
/// `$-1`/`*-1` and RESP3's `_` are all `.null`. Attributes (`|`) are read and dropped: the
/// value they annotate is returned in their place.
public enum RESPValue: Sendable, Hashable {
    case simpleString(ByteBuffer)
    /// A simple (`-`) or bulk (`!`) error. Error replies are values so that one failed
    /// command in a pipeline leaves the other replies intact; `throwIfError()` raises one.
    case error(RedisServerError)
    case integer(Int64)
    case bulkString(ByteBuffer)
    case null
    case double(Double)
    case boolean(Bool)
    /// Decimal digits with an optional sign, as sent.
    case bigNumber(String)
    /// `format` is the three-letter type (`txt`, `mkd`); the content excludes it.
    case verbatimString(format: String, ByteBuffer)
    case array([RESPValue])
    case map([RESPPair])
    case set([RESPValue])
    /// Out-of-band data. A connection skips pushes; the parser still returns them.
    case push([RESPValue])
}

/// One key/value entry of a RESP3 map (kept in wire order, so it needs no hashing of keys).
public struct RESPPair: Sendable, Hashable {
    public var key: RESPValue
    public var value: RESPValue

    public init(_ key: RESPValue, _ value: RESPValue) {
        self.key = key
        self.value = value
    }
}

extension RESPValue {
    /// The bytes of a simple, bulk or verbatim string; nil for other types.
    public var buffer: ByteBuffer? {
        switch self {
        case .simpleString(let b), .bulkString(let b), .verbatimString(_, let b): return b
        default: return nil
        }
    }

    /// The bytes of a simple, bulk or verbatim string as an array.
    public var bytes: [UInt8]? { buffer.map { $0.withUnsafeReadableBytes { Array($0) } } }

    /// A string reply decoded as UTF-8 (invalid sequences repaired), or an integer, double or
    /// big number as text; nil for aggregates, null and errors.
    public var string: String? {
        switch self {
        case .simpleString(let b), .bulkString(let b), .verbatimString(_, let b):
            return String(buffer: b)
        case .integer(let i): return String(i)
        case .double(let d): return String(d)
        case .bigNumber(let s): return s
        case .boolean(let b): return b ? "1" : "0"
        default: return nil
        }
    }

    /// An integer reply, or a string reply holding a decimal integer (RESP2 sends some
    /// numbers as strings).
    public var int: Int64? {
        switch self {
        case .integer(let i): return i
        case .boolean(let b): return b ? 1 : 0
        case .simpleString(let b), .bulkString(let b): return Int64(String(buffer: b))
        default: return nil
        }
    }

    /// A double reply, or an integer or string that parses as one.
    public var double: Double? {
        switch self {
        case .double(let d): return d
        case .integer(let i): return Double(i)
        case .simpleString(let b), .bulkString(let b): return Double(String(buffer: b))
        default: return nil
        }
    }

    /// The elements of an array, set or push; a map's entries flattened (key, value, ...)
    /// the way RESP2 sends maps.
    public var array: [RESPValue]? {
        switch self {
        case .array(let a), .set(let a), .push(let a): return a
        case .map(let pairs): return pairs.flatMap { [$0.key, $0.value] }
        default: return nil
        }
    }

    /// A map's entries, or a RESP2 flat array of alternating keys and values read as pairs.
    public var pairs: [RESPPair]? {
        switch self {
        case .map(let p): return p
        case .array(let a) where a.count % 2 == 0:
            return stride(from: 0, to: a.count, by: 2).map { RESPPair(a[$0], a[$0 + 1]) }
        default: return nil
        }
    }

    public var isNull: Bool { if case .null = self { return true } else { return false } }

    public var serverError: RedisServerError? {
        if case .error(let e) = self { return e } else { return nil }
    }

    /// Returns the value, or throws the server's error reply as a `RedisError`.
    @discardableResult
    public func throwIfError() throws(RedisError) -> RESPValue {
        if case .error(let e) = self { throw RedisError(serverError: e) }
        return self
    }

    /// The value under a string key of a map (RESP3) or flat key/value array (RESP2).
    public subscript(_ name: String) -> RESPValue? {
        guard let pairs else { return nil }
        return pairs.first { $0.key.string == name }?.value
    }
}

extension RESPValue: CustomStringConvertible {
    /// A short rendering for messages and tests; long strings are cut.
    public var description: String {
        switch self {
        case .simpleString(let b): return "+" + Self.preview(b)
        case .error(let e): return "-" + e.message
        case .integer(let i): return ":\(i)"
        case .bulkString(let b): return "$" + Self.preview(b)
        case .null: return "(null)"
        case .double(let d): return ",\(d)"
        case .boolean(let b): return b ? "#t" : "#f"
        case .bigNumber(let s): return "(" + s
        case .verbatimString(let f, let b): return "=\(f):" + Self.preview(b)
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .set(let a): return "~[" + a.map(\.description).joined(separator: ", ") + "]"
        case .push(let a): return ">[" + a.map(\.description).joined(separator: ", ") + "]"
        case .map(let p): return "{" + p.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        }
    }

    private static func preview(_ b: ByteBuffer) -> String {
        let limit = 64
        let head = b.getSlice(at: b.readerIndex, length: min(limit, b.readableBytes)) ?? b
        let text = head.readableBytesView.map { c -> String in
            (0x20..<0x7F).contains(c) ? String(UnicodeScalar(c)) : "\\x" + (c < 16 ? "0" : "") + String(c, radix: 16)
        }.joined()
        return "\"" + text + (b.readableBytes > limit ? "…(\(b.readableBytes) bytes)" : "") + "\""
    }
}

extension [RESPValue] {
    /// Moves reply `i` out: a reply read where it is costs a retain and a release of its
    /// buffer, per reply of a pipeline. An error reply is left in its place, never `.null`,
    /// which readers take for "no such key": a reply read twice fails the check instead of
    /// dropping a key.
    @inlinable
    public mutating func take(_ i: Int) -> RESPValue {
        var value = RESPValue.error(RedisServerError("ERR taken"))
        swap(&value, &self[i])
        return value
    }
}
