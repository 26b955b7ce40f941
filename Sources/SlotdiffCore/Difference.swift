import Foundation

/// The kinds of difference, in the order they are checked: a key is reported once, with the
/// first kind that applies. `duplicate` is a key found twice on one side (two shard dumps that
/// both hold it): reported, never merged silently.
public enum DifferenceKind: String, Sendable, CaseIterable, Codable {
    case missing, extra, type, value, ttl, duplicate
}

public enum Side: String, Sendable, Codable { case source, target }

/// One line of the diff log.
public struct Difference: Sendable, Equatable {
    public var kind: DifferenceKind
    public var db: Int
    public var slot: UInt16
    public var key: [UInt8]
    public var source: SideState?
    public var target: SideState?
    /// For `duplicate`: which side, and the two origins (files) that hold the key.
    public var side: Side?
    public var origins: [String]?
    /// Under `--db-map`: the database the key is in on the source (`db` is the target's).
    public var sourceDb: Int?
    /// For `value` and `type`: what differs, element by element (`Explain`), when the key was
    /// explained.
    public var detail: JSONValue?

    public init(
        kind: DifferenceKind, db: Int, slot: UInt16, key: [UInt8], source: SideState?, target: SideState?,
        side: Side? = nil, origins: [String]? = nil, detail: JSONValue? = nil
    ) {
        self.kind = kind
        self.db = db
        self.slot = slot
        self.key = key
        self.source = source
        self.target = target
        self.side = side
        self.origins = origins
        self.detail = detail
    }

    /// The key as text when it is valid UTF-8, else nil (the log then carries `key_base64`).
    public var keyText: String? { String(validating: key, as: UTF8.self) }

    /// The key for people: text, or `\xNN` escapes for bytes that are not printable UTF-8.
    public var displayKey: String { Self.display(key) }

    public static func display(_ key: [UInt8]) -> String {
        if let t = String(validating: key, as: UTF8.self), !t.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) { return t }
        var s = ""
        for b in key {
            if b >= 0x20 && b < 0x7F && b != UInt8(ascii: "\\") { s.append(Character(Unicode.Scalar(b))) } else { s += String(format: "\\x%02x", b) }
        }
        return s
    }
}

/// Decides which difference, if any, two states of the same key make.
public struct DifferenceRule: Sendable {
    public var ttlToleranceMs: Int64

    public init(ttlToleranceMs: Int64 = 1000) { self.ttlToleranceMs = ttlToleranceMs }

    public func kind(source: SideState, target: SideState) -> DifferenceKind? {
        if source.type != target.type { return .type }
        if source.digest != target.digest { return .value }
        switch (source.expireMs, target.expireMs) {
        case (nil, nil): return nil
        case let (a?, b?): return abs(a - b) > ttlToleranceMs ? .ttl : nil
        default: return .ttl
        }
    }
}
