import HashSlots

/// Which keys a check looks at: `--db`, `--match`, `--type`, `--slots`.
public struct KeyFilter: Sendable {
    public var dbs: Set<Int>?
    public var match: GlobPattern?
    public var types: Set<ValueType>?
    public var slots: SlotRange?
    /// The slots of the current pass of a check read in several passes: keys outside it are
    /// read in another pass (not filtered out, not counted).
    public var pass: SlotRange?
    /// `--sample`: only these slots are looked at. Like a pass, keys of the other slots are
    /// skipped before anything is read of them, and not counted as filtered out.
    public var sample: SlotSample?

    public init(dbs: Set<Int>? = nil, match: GlobPattern? = nil, types: Set<ValueType>? = nil, slots: SlotRange? = nil) {
        self.dbs = dbs
        self.match = match
        self.types = types
        self.slots = slots
    }

    @inlinable
    public func inPass(_ slot: UInt16) -> Bool { (pass?.contains(slot) ?? true) && (sample?.contains(slot) ?? true) }

    /// The slots to read in this pass: `--slots` within the pass.
    public var readSlots: SlotRange? {
        guard let pass else { return slots }
        guard let slots else { return pass }
        return SlotRange(max(pass.lower, slots.lower), min(pass.upper, slots.upper))
    }

    @inlinable
    public func accepts(db: Int, key: UnsafeRawBufferPointer, slot: UInt16, type: ValueType) -> Bool {
        if let dbs, !dbs.contains(db) { return false }
        if let slots, !slots.contains(slot) { return false }
        if let types, !types.contains(type) { return false }
        if let match, !match.matches(key) { return false }
        return true
    }
}
