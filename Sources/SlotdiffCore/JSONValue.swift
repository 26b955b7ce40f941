import Foundation

/// A JSON value held as it was written: the `detail` of a diff-log line, which report and the
/// tests read back without a type per value type. Objects are written with their keys sorted,
/// so a line read back and written again is the same text.
public indirect enum JSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public static func int(_ v: Int) -> JSONValue { .number(Double(v)) }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public subscript(index: Int) -> JSONValue? {
        if case .array(let a) = self, index >= 0, index < a.count { return a[index] }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var numberValue: Double? { if case .number(let d) = self { return d }; return nil }
    public var intValue: Int? { numberValue.flatMap { Int(exactly: $0) } }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var objectValue: [String: JSONValue]? { if case .object(let o) = self { return o }; return nil }

    /// The JSON text, keys sorted; numbers that are whole are written without a fraction.
    public var text: String {
        var s = ""
        write(into: &s)
        return s
    }

    public func write(into s: inout String) {
        switch self {
        case .null: s += "null"
        case .bool(let b): s += b ? "true" : "false"
        case .number(let d):
            if !d.isFinite {
                s += "null"
            } else if d == d.rounded(), abs(d) < 9_007_199_254_740_992 {
                s += String(Int64(d))
            } else {
                s += "\(d)"
            }
        case .string(let t): JSONText.quoted(t, into: &s)
        case .array(let a):
            s += "["
            for (i, v) in a.enumerated() {
                if i > 0 { s += "," }
                v.write(into: &s)
            }
            s += "]"
        case .object(let o):
            s += "{"
            for (i, k) in o.keys.sorted().enumerated() {
                if i > 0 { s += "," }
                JSONText.quoted(k, into: &s)
                s += ":"
                o[k]!.write(into: &s)
            }
            s += "}"
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let d = try? c.decode(Double.self) {
            self = .number(d)
        } else if let t = try? c.decode(String.self) {
            self = .string(t)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let d): try c.encode(d)
        case .string(let t): try c.encode(t)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}
