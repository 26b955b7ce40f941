import Foundation

/// Computes the encoding-independent value digest defined in DESIGN.md.
///
/// Every value is fed as a sequence of *items* (a list element, a set member, a hash pair,
/// a sorted-set entry, a stream entry), each made of length-prefixed *components*.
/// Ordered types (list, stream) stream their items into one XXH3-128 state; unordered types
/// (set, hash, zset) hash each item on its own and add the hashes (wrapping 128-bit sum), so
/// insertion order and encoding do not matter. The final digest is
/// `XXH3-128(tag, count, body, extras)`. One instance per worker, reused for every key.
public final class CanonicalDigester {
    public private(set) var type: ValueType = .string
    public var count: UInt64 { itemCount }
    @usableFromInline var itemCount: UInt64 = 0

    @usableFromInline let valueState = XXH3Stream()
    @usableFromInline let itemState = XXH3Stream()
    @usableFromInline var scratch: UnsafeMutableRawPointer
    @usableFromInline var scratchCap: Int
    @usableFromInline var scratchLen = 0
    @usableFromInline var itemStreaming = false
    @usableFromInline var ordered = true
    @usableFromInline var sum = Hash128.zero
    /// A whole string value passed at once: hashed in one shot (same result as streaming).
    var oneShotBody: Hash128?

    // Streams: last ID and the order-independent sum over consumer groups.
    var lastID: (UInt64, UInt64) = (0, 0)
    var groupSum = Hash128.zero
    var groupCount: UInt64 = 0
    var pelSum = Hash128.zero
    var pelCount: UInt64 = 0
    var groupHeader: [UInt8] = []
    var moduleID: UInt64 = 0

    /// Items larger than this are hashed with a streaming state instead of the scratch buffer.
    @usableFromInline static let scratchLimit = 64 * 1024

    public init() {
        scratchCap = 4096
        scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchCap, alignment: 16)
    }

    deinit { scratch.deallocate() }

    public func begin(_ type: ValueType) {
        self.type = type
        itemCount = 0
        ordered = !type.isUnordered
        sum = .zero
        oneShotBody = nil
        valueState.reset()
        if type == .stream {
            lastID = (0, 0)
            groupSum = .zero
            groupCount = 0
        }
        moduleID = 0
    }

    // MARK: strings

    /// A whole string value in one piece.
    @inlinable
    public func string(_ bytes: UnsafeRawBufferPointer) {
        precondition(type == .string)
        setOneShot(Hash128.of(bytes), length: bytes.count)
    }

    @usableFromInline
    func setOneShot(_ h: Hash128, length: Int) {
        oneShotBody = h
        itemCount = UInt64(length)
    }

    /// An integer-encoded string: its decimal text.
    public func string(int v: Int64) {
        Self.withDecimal(v) { string($0) }
    }

    /// A big string in pieces, in order.
    @inlinable
    public func stringPart(_ bytes: UnsafeRawBufferPointer) {
        valueState.update(bytes)
        itemCount += UInt64(bytes.count)
    }

    // MARK: items

    @inlinable
    public func beginItem() {
        if !ordered {
            scratchLen = 0
            itemStreaming = false
        }
    }

    @inlinable
    public func endItem() {
        itemCount &+= 1
        if ordered { return }
        let h = itemStreaming ? itemState.digest()
            : Hash128.of(UnsafeRawBufferPointer(start: scratch, count: scratchLen))
        sum = sum &+ h
    }

    /// A length-prefixed component of the current item.
    @inlinable
    public func component(_ bytes: UnsafeRawBufferPointer) {
        var len = UInt64(bytes.count).littleEndian
        if ordered {
            valueState.update(&len, 8)
            valueState.update(bytes)
        } else {
            withUnsafeBytes(of: &len) { append($0) }
            append(bytes)
        }
    }

    @inlinable
    public func component(int v: Int64) {
        Self.withDecimal(v) { component($0) }
    }

    @inlinable
    public func component(_ e: Element) {
        switch e {
        case .bytes(let b): component(b)
        case .int(let v): component(int: v)
        }
    }

    /// Starts a component whose bytes arrive in pieces (`componentPart`).
    @inlinable
    public func componentBegin(length: Int) {
        var len = UInt64(length).littleEndian
        if ordered { valueState.update(&len, 8) } else { withUnsafeBytes(of: &len) { append($0) } }
    }

    @inlinable
    public func componentPart(_ bytes: UnsafeRawBufferPointer) {
        if ordered { valueState.update(bytes) } else { append(bytes) }
    }

    /// Eight raw bytes (IDs, scores, expiry times, counts) without a length prefix.
    @inlinable
    public func fixed(_ v: UInt64) {
        var x = v.littleEndian
        if ordered { valueState.update(&x, 8) } else { withUnsafeBytes(of: &x) { append($0) } }
    }

    /// A sorted-set score: the IEEE-754 bits of the parsed double, -0.0 folded into +0.0 and
    /// every NaN into one.
    @inlinable
    public func score(_ d: Double) {
        fixed(Self.canonicalBits(d))
    }

    @inlinable
    public static func canonicalBits(_ d: Double) -> UInt64 {
        if d == 0 { return 0 }
        if d.isNaN { return 0x7FF8_0000_0000_0000 }
        return d.bitPattern
    }

    // Convenience for single-component items.
    @inlinable
    public func element(_ e: Element) {
        beginItem(); component(e); endItem()
    }

    @inlinable
    public func element(_ bytes: UnsafeRawBufferPointer) {
        beginItem(); component(bytes); endItem()
    }

    @usableFromInline
    func append(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        if itemStreaming {
            itemState.update(bytes)
            return
        }
        if scratchLen + n > Self.scratchLimit {
            itemState.reset()
            itemState.update(UnsafeRawBufferPointer(start: scratch, count: scratchLen))
            itemState.update(bytes)
            itemStreaming = true
            return
        }
        if scratchLen + n > scratchCap {
            var cap = scratchCap * 2
            while cap < scratchLen + n { cap *= 2 }
            let p = UnsafeMutableRawPointer.allocate(byteCount: cap, alignment: 16)
            p.copyMemory(from: scratch, byteCount: scratchLen)
            scratch.deallocate()
            scratch = p
            scratchCap = cap
        }
        if n > 0 { (scratch + scratchLen).copyMemory(from: bytes.baseAddress!, byteCount: n) }
        scratchLen += n
    }

    // MARK: streams

    public func streamLastID(ms: UInt64, seq: UInt64) { lastID = (ms, seq) }

    public func beginGroup(name: UnsafeRawBufferPointer, lastMs: UInt64, lastSeq: UInt64) {
        var h: [UInt8] = []
        h.reserveCapacity(name.count + 24)
        Self.appendU64(&h, UInt64(name.count))
        h.append(contentsOf: name)
        Self.appendU64(&h, lastMs)
        Self.appendU64(&h, lastSeq)
        groupHeader = h
        pelSum = .zero
        pelCount = 0
    }

    /// A pending entry of the current group: (ID, consumer, delivery count).
    public func pending(ms: UInt64, seq: UInt64, consumer: UnsafeRawBufferPointer, deliveries: UInt64) {
        var b: [UInt8] = []
        b.reserveCapacity(consumer.count + 32)
        Self.appendU64(&b, ms)
        Self.appendU64(&b, seq)
        Self.appendU64(&b, UInt64(consumer.count))
        b.append(contentsOf: consumer)
        Self.appendU64(&b, deliveries)
        pelSum = pelSum &+ Hash128.of(b)
        pelCount += 1
    }

    public func endGroup() {
        var h = groupHeader
        Self.appendU64(&h, pelSum.low)
        Self.appendU64(&h, pelSum.high)
        Self.appendU64(&h, pelCount)
        groupSum = groupSum &+ Hash128.of(h)
        groupCount += 1
    }

    // MARK: modules

    public func module(id: UInt64) { moduleID = id }

    // MARK: result

    public func finish() -> Hash128 {
        let body: Hash128
        if let b = oneShotBody { body = b } else if ordered { body = valueState.digest() } else { body = sum }
        var out: [UInt8] = [type.rawValue]
        out.reserveCapacity(80)
        Self.appendU64(&out, count)
        Self.appendU64(&out, body.low)
        Self.appendU64(&out, body.high)
        switch type {
        case .stream:
            Self.appendU64(&out, lastID.0)
            Self.appendU64(&out, lastID.1)
            Self.appendU64(&out, groupSum.low)
            Self.appendU64(&out, groupSum.high)
            Self.appendU64(&out, groupCount)
        case .module:
            Self.appendU64(&out, moduleID)
        default:
            break
        }
        return Hash128.of(out)
    }

    // MARK: helpers

    @inlinable
    static func appendU64(_ a: inout [UInt8], _ v: UInt64) {
        withUnsafeBytes(of: v.littleEndian) { a.append(contentsOf: $0) }
    }

    /// The decimal text of an integer, as a client reads an integer-encoded value.
    @inlinable
    public static func withDecimal<R>(_ v: Int64, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeTemporaryAllocation(byteCount: 20, alignment: 1) { buf in
            var i = 20
            var m = v.magnitude
            repeat {
                i -= 1
                buf[i] = UInt8(truncatingIfNeeded: 48 &+ m % 10)
                m /= 10
            } while m != 0
            if v < 0 { i -= 1; buf[i] = UInt8(ascii: "-") }
            return body(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buf)[i...]))
        }
    }
}

/// Parses the text form of a double as a server would (`strtod`), for scores stored as text.
public func parseDouble(_ bytes: UnsafeRawBufferPointer) -> Double? {
    if bytes.count == 0 || bytes.count > 300 { return nil }
    return withUnsafeTemporaryAllocation(byteCount: bytes.count + 1, alignment: 1) { buf -> Double? in
        buf.copyMemory(from: bytes)
        buf[bytes.count] = 0
        let p = buf.baseAddress!.assumingMemoryBound(to: CChar.self)
        var end: UnsafeMutablePointer<CChar>? = nil
        let d = strtod(p, &end)
        guard let e = end, e == p + bytes.count else { return nil }
        return d
    }
}
