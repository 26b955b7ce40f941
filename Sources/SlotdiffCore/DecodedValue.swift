/// A value as a client reads it, element by element: what an explanation diffs. Built by a
/// `ValueCapture` from the same calls the value decoders make into the canonical digest, so
/// the live readers (DUMP or chunked) and the dump-file parser all give it without a decoder
/// of their own.
///
/// Items are kept in a form common to every type:
/// - list, set: `parts = [element]`;
/// - hash: `parts = [field, value]`, `fixed = [expiry ms]` when the field has its own expiry;
/// - zset: `parts = [member]`, `fixed = [score bits]` (canonical IEEE-754 binary64);
/// - stream entry: `fixed = [id ms, id seq, field count]`, `parts = [f1, v1, f2, v2, …]`.
public struct DecodedValue: Sendable, Equatable {
    public struct Item: Sendable, Equatable, Hashable {
        public var parts: [[UInt8]] = []
        public var fixed: [UInt64] = []
        public init(parts: [[UInt8]] = [], fixed: [UInt64] = []) {
            self.parts = parts
            self.fixed = fixed
        }
    }

    public struct Pending: Sendable, Equatable, Hashable {
        public var ms: UInt64
        public var seq: UInt64
        public var consumer: [UInt8]
        public var deliveries: UInt64
        public init(ms: UInt64, seq: UInt64, consumer: [UInt8], deliveries: UInt64) {
            self.ms = ms
            self.seq = seq
            self.consumer = consumer
            self.deliveries = deliveries
        }
    }

    /// A stream's consumer group: its last-delivered ID and pending entries.
    public struct Group: Sendable, Equatable {
        public var name: [UInt8]
        public var lastMs: UInt64
        public var lastSeq: UInt64
        public var pending: [Pending] = []
        public init(name: [UInt8], lastMs: UInt64, lastSeq: UInt64, pending: [Pending] = []) {
            self.name = name
            self.lastMs = lastMs
            self.lastSeq = lastSeq
            self.pending = pending
        }
    }

    public var type: ValueType
    /// Elements (a string: its bytes), counted even where they were not kept.
    public var count: Int = 0
    /// Over the capture's bound: only `count` is known (no element is kept).
    public var tooLarge = false
    public var string: [UInt8] = []
    public var items: [Item] = []
    public var lastID: (ms: UInt64, seq: UInt64)?
    public var groups: [Group] = []

    public init(type: ValueType) { self.type = type }

    public static func string(_ b: [UInt8]) -> DecodedValue {
        var v = DecodedValue(type: .string)
        v.string = b
        v.count = b.count
        return v
    }

    public static func items(_ type: ValueType, _ items: [Item]) -> DecodedValue {
        var v = DecodedValue(type: type)
        v.items = items
        v.count = items.count
        return v
    }

    public static func == (a: DecodedValue, b: DecodedValue) -> Bool {
        a.type == b.type && a.count == b.count && a.tooLarge == b.tooLarge && a.string == b.string && a.items == b.items
            && a.lastID?.ms == b.lastID?.ms && a.lastID?.seq == b.lastID?.seq && a.groups == b.groups
    }
}

/// How much an explanation keeps in memory: per key and side at most `elements` elements and
/// `bytes` bytes of them; per side and explanation round (the keys explained after one pass) at
/// most `totalBytes`. A value over either is explained by its size only (`too_large`).
public struct ExplainBound: Sendable, Equatable {
    public var elements = 100_000
    public var bytes = 64 << 20
    public var totalBytes = 256 << 20
    public init() {}
    public init(elements: Int, bytes: Int, totalBytes: Int) {
        self.elements = elements
        self.bytes = bytes
        self.totalBytes = totalBytes
    }
}

/// Where a `ValueCapture` hands a value's elements as they are read, instead of keeping them:
/// a value of any size then costs one element of memory (repair scripts). Calls come from the
/// one thread reading the value.
public protocol ValueSink: AnyObject {
    /// The `index`-th key asked for starts, or starts again from its beginning (a key read
    /// again after it changed while read): whatever was handed for it before is void.
    func begin(_ index: Int, _ type: ValueType)
    /// The next bytes of a string value.
    func stringPart(_ bytes: UnsafeRawBufferPointer)
    /// One element, whole (in `DecodedValue.Item`'s form); an element a SCAN-family read
    /// returned twice is handed once.
    func item(_ item: DecodedValue.Item)
}

/// Keeps the value fed to a `CanonicalDigester` (set as its `capture`), up to a bound: past
/// the bound's elements or bytes (or what is left of its total for the round), what was kept
/// is let go and only the count goes on, so a huge key costs no more memory than the bound.
/// With a `sink`, strings and elements go to it instead and only a stream's consumer groups
/// are kept (within the bound).
public final class ValueCapture {
    public let bound: ExplainBound
    public let sink: (any ValueSink)?
    /// Which of the keys asked for is read next: set by the side before each key's value.
    public var index = 0
    /// Bytes of the round's total not yet kept by an earlier key.
    public private(set) var totalLeft: Int
    public private(set) var value = DecodedValue(type: .string)
    private var item = DecodedValue.Item()
    private var bytes = 0
    private var maxBytes: Int
    private var maxElements: Int { bound.elements }

    public init(bound: ExplainBound = ExplainBound(), sink: (any ValueSink)? = nil) {
        self.bound = bound
        self.sink = sink
        totalLeft = bound.totalBytes
        maxBytes = min(bound.bytes, bound.totalBytes)
    }

    /// A new value starts (a key read again from the start forgets what was read of it).
    public func begin(_ type: ValueType) {
        value = DecodedValue(type: type)
        item = .init()
        bytes = 0
        maxBytes = min(bound.bytes, totalLeft)
        sink?.begin(index, type)
    }

    private func overflow() {
        value.tooLarge = true
        bytes = 0
        value.string = []
        value.items = []
        value.groups = []
        item = .init()
    }

    public func stringPart(_ b: UnsafeRawBufferPointer) {
        value.count += b.count
        if let sink { sink.stringPart(b); return }
        if value.tooLarge { return }
        bytes += b.count
        if bytes > maxBytes { overflow(); return }
        value.string.append(contentsOf: b)
    }

    public func beginItem() { item = .init() }

    public func component(_ b: UnsafeRawBufferPointer) {
        // A sink takes each element as it ends: one element is all that is held.
        if sink != nil { item.parts.append(Array(b)); return }
        if value.tooLarge { return }
        // Checked here too, not only at the item's end: one element may be huge.
        bytes += b.count
        if bytes > maxBytes { overflow(); return }
        item.parts.append(Array(b))
    }

    public func componentBegin() {
        if sink == nil && value.tooLarge { return }
        item.parts.append([])
    }

    public func componentPart(_ b: UnsafeRawBufferPointer) {
        if sink == nil {
            if value.tooLarge { return }
            bytes += b.count
            if bytes > maxBytes { overflow(); return }
        }
        if item.parts.isEmpty { item.parts.append([]) }
        item.parts[item.parts.count - 1].append(contentsOf: b)
    }

    public func fixed(_ v: UInt64) {
        if sink == nil && value.tooLarge { return }
        item.fixed.append(v)
    }

    /// `keep` false: an element a SCAN-family read returned twice.
    public func endItem(keep: Bool) {
        defer { item = .init() }
        guard keep else { return }
        value.count += 1
        if let sink { sink.item(item); return }
        if value.tooLarge { return }
        if value.count > maxElements || bytes > maxBytes { overflow(); return }
        value.items.append(item)
    }

    public func streamLastID(ms: UInt64, seq: UInt64) { value.lastID = (ms, seq) }

    public func beginGroup(name: UnsafeRawBufferPointer, lastMs: UInt64, lastSeq: UInt64) {
        if value.tooLarge { return }
        value.groups.append(.init(name: Array(name), lastMs: lastMs, lastSeq: lastSeq))
    }

    public func pending(ms: UInt64, seq: UInt64, consumer: UnsafeRawBufferPointer, deliveries: UInt64) {
        if value.tooLarge || value.groups.isEmpty { return }
        let g = value.groups.count - 1
        value.groups[g].pending.append(.init(ms: ms, seq: seq, consumer: Array(consumer), deliveries: deliveries))
        bytes += consumer.count + 24
        if value.groups[g].pending.count > maxElements || bytes > maxBytes { overflow() }
    }

    /// The value read since the last `begin`; what it keeps counts against the round's total.
    public func take() -> DecodedValue {
        let v = value
        if !v.tooLarge { totalLeft = max(0, totalLeft - bytes) }
        value = DecodedValue(type: .string)
        bytes = 0
        return v
    }
}
