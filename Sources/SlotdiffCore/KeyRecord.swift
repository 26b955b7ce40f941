/// What a keyspace source yields for each key: `(db, key, slot, type, expiry, digest)`.
public struct KeyRecord: Sendable, Equatable {
    public var db: Int
    public var key: [UInt8]
    public var slot: UInt16
    public var type: ValueType
    /// Absolute Unix time in milliseconds, or nil.
    public var expireMs: Int64?
    public var digest: Hash128

    public init(db: Int, key: [UInt8], slot: UInt16, type: ValueType, expireMs: Int64?, digest: Hash128) {
        self.db = db
        self.key = key
        self.slot = slot
        self.type = type
        self.expireMs = expireMs
        self.digest = digest
    }
}

/// The attributes of a key on one side, as written in the diff log.
public struct SideState: Sendable, Equatable {
    public var type: ValueType
    public var expireMs: Int64?
    public var digest: Hash128

    public init(type: ValueType, expireMs: Int64?, digest: Hash128) {
        self.type = type
        self.expireMs = expireMs
        self.digest = digest
    }
}
