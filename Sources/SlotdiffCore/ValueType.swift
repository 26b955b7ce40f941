/// The logical type of a value, as a client sees it (`TYPE key`), independent of its encoding.
public enum ValueType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case string = 1, list, set, zset, hash, stream, module

    public var description: String {
        switch self {
        case .string: "string"
        case .list: "list"
        case .set: "set"
        case .zset: "zset"
        case .hash: "hash"
        case .stream: "stream"
        case .module: "module"
        }
    }

    public init?(name: String) {
        guard let t = Self.allCases.first(where: { $0.description == name.lowercased() }) else { return nil }
        self = t
    }

    /// Types whose elements have no order: their digest is a sum of element hashes.
    @inlinable
    public var isUnordered: Bool { self == .set || self == .zset || self == .hash }
}

/// One element of a compact encoding (listpack, ziplist, intset) or a string: bytes, or an
/// integer that a client would read as its decimal text.
public enum Element {
    case bytes(UnsafeRawBufferPointer)
    case int(Int64)
}

extension Hash128 {
    /// `--mode length`: the type and element count stand in for the value, the same for dump
    /// files and servers.
    public static func length(of type: ValueType, count: UInt64) -> Hash128 {
        Hash128(low: count, high: UInt64(type.rawValue))
    }
}
