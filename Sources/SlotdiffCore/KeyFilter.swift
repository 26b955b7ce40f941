/// Which keys a check looks at: `--db`, `--match`, `--type`, `--slots`.
public struct KeyFilter: Sendable {
    public var dbs: Set<Int>?
    public var match: GlobPattern?
    public var types: Set<ValueType>?
    public var slots: SlotRange?

    public init(dbs: Set<Int>? = nil, match: GlobPattern? = nil, types: Set<ValueType>? = nil, slots: SlotRange? = nil) {
        self.dbs = dbs
        self.match = match
        self.types = types
        self.slots = slots
    }

    public var isEmpty: Bool { dbs == nil && match == nil && types == nil && slots == nil }

    @inlinable
    public func accepts(db: Int, key: UnsafeRawBufferPointer, slot: UInt16, type: ValueType) -> Bool {
        if let dbs, !dbs.contains(db) { return false }
        if let slots, !slots.contains(slot) { return false }
        if let types, !types.contains(type) { return false }
        if let match, !match.matches(key) { return false }
        return true
    }
}
