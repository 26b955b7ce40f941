import Foundation

/// Computes the encoding-independent value digest defined in DESIGN.md.
///
/// Every value is fed as a sequence of *items* (a list element, a set member, a hash pair,
/// a sorted-set entry, a stream entry), each made of length-prefixed *components*.
/// Ordered types (list, stream) stream their items into one XXH3-128 state; unordered types
/// (set, hash, zset) hash each item on its own and add the hashes (wrapping 128-bit sum), so
/// insertion order and encoding do not matter. The final digest is
/// `XXH3-128(tag, count, body, extras)`. One instance per worker, reused for every key.
// Stored properties are `@exclusivity(unchecked)`: they are touched per byte range by the one
// thread that owns the instance, and a dynamic exclusivity check there made decoding 2.6x slower.
public final class CanonicalDigester {
    @exclusivity(unchecked) public private(set) var type: ValueType = .string
    public var count: UInt64 { itemCount }
    @usableFromInline @exclusivity(unchecked) var itemCount: UInt64 = 0

    /// The ordered byte stream of a value (string bytes, list elements, stream entries).
    @usableFromInline let body = HashAccumulator()
    /// One item of an unordered value.
    @usableFromInline let item = HashAccumulator()
    @usableFromInline @exclusivity(unchecked) var ordered = true
    @usableFromInline @exclusivity(unchecked) var sum = Hash128.zero

    // Streams: last ID and the order-independent sum over consumer groups.
    @exclusivity(unchecked) var lastID: (UInt64, UInt64) = (0, 0)
    @exclusivity(unchecked) var groupSum = Hash128.zero
    @exclusivity(unchecked) var groupCount: UInt64 = 0
    @exclusivity(unchecked) var pelSum = Hash128.zero
    @exclusivity(unchecked) var pelCount: UInt64 = 0
    @exclusivity(unchecked) var groupHeader: [UInt8] = []
    @exclusivity(unchecked) var moduleID: UInt64 = 0

    /// Set only to explain a difference: every value fed from here on is also kept, element
    /// by element (bounded, see `ValueCapture`). Nil in a check, where it costs one test per call.
    @exclusivity(unchecked) public var capture: ValueCapture? {
        didSet { capturing = capture != nil }
    }
    /// Whether `capture` is set: tested per element instead of loading the optional reference,
    /// which costs a retain and a release per call even when it is nil.
    @usableFromInline @exclusivity(unchecked) var capturing = false

    public init() {}

    public func begin(_ type: ValueType) {
        self.type = type
        itemCount = 0
        ordered = !type.isUnordered
        sum = .zero
        oneShot = nil
        body.reset()
        if type == .stream {
            lastID = (0, 0)
            groupSum = .zero
            groupCount = 0
        }
        moduleID = 0
        if capturing { capture?.begin(type) }
    }

    // MARK: strings

    /// A whole string value in one piece: hashed where it lies, not copied.
    @inlinable
    public func string(_ bytes: UnsafeRawBufferPointer) {
        oneShot = Hash128.of(bytes)
        itemCount = UInt64(bytes.count)
        if capturing, let c = capture { c.stringPart(bytes) }
    }

    /// The body hash of a string passed whole (the same value streaming would give).
    @usableFromInline @exclusivity(unchecked) var oneShot: Hash128?

    /// An integer-encoded string: its decimal text.
    public func string(int v: Int64) {
        Self.withDecimal(v) { string($0) }
    }

    /// A big string in pieces, in order.
    @inlinable
    public func stringPart(_ bytes: UnsafeRawBufferPointer) {
        body.write(bytes)
        itemCount += UInt64(bytes.count)
        if capturing, let c = capture { c.stringPart(bytes) }
    }

    // MARK: items

    @inlinable
    public func beginItem() {
        if !ordered { item.reset() }
        if capturing, let c = capture { c.beginItem() }
    }

    @inlinable
    public func endItem() {
        itemCount &+= 1
        if !ordered { sum = sum &+ item.digest() }
        if capturing, let c = capture { c.endItem(keep: true) }
    }

    /// Items of an unordered value hashed by an `ItemWriter`: their count and the sum of their hashes.
    @usableFromInline
    func add(items: UInt64, sum s: Hash128) {
        itemCount &+= items
        sum = sum &+ s
    }

    /// Ends an item of an unordered value read in overlapping chunks (SSCAN, HSCAN, ZSCAN may
    /// return an element twice): an item already seen is not counted again.
    public func endItem(unique seen: inout Set<Hash128>) {
        precondition(!ordered)
        let h = item.digest()
        let new = seen.insert(h).inserted
        if new {
            itemCount &+= 1
            sum = sum &+ h
        }
        if capturing, let c = capture { c.endItem(keep: new) }
    }

    /// A length-prefixed component of the current item (the body of an ordered value, the item
    /// of an unordered one). Each accumulator is named in its own branch: choosing one into a
    /// local costs a retain and a release per call.
    @inlinable
    public func component(_ bytes: UnsafeRawBufferPointer) {
        if ordered { body.writeComponent(bytes) } else { item.writeComponent(bytes) }
        if capturing, let c = capture { c.component(bytes) }
    }

    /// An integer component: its decimal text, written straight into the accumulator.
    @inlinable
    public func component(int v: Int64) {
        if capturing {
            Self.withDecimal(v) { component($0) }
        } else if ordered {
            body.writeDecimalComponent(v)
        } else {
            item.writeDecimalComponent(v)
        }
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
        if ordered { body.write(UInt64(length)) } else { item.write(UInt64(length)) }
        if capturing, let c = capture { c.componentBegin() }
    }

    @inlinable
    public func componentPart(_ bytes: UnsafeRawBufferPointer) {
        if ordered { body.write(bytes) } else { item.write(bytes) }
        if capturing, let c = capture { c.componentPart(bytes) }
    }

    /// Eight raw bytes (IDs, scores, expiry times, counts) without a length prefix.
    @inlinable
    public func fixed(_ v: UInt64) {
        if ordered { body.write(v) } else { item.write(v) }
        if capturing, let c = capture { c.fixed(v) }
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

    // MARK: streams

    public func streamLastID(ms: UInt64, seq: UInt64) {
        lastID = (ms, seq)
        capture?.streamLastID(ms: ms, seq: seq)
    }

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
        capture?.beginGroup(name: name, lastMs: lastMs, lastSeq: lastSeq)
    }

    /// A pending entry of the current group: (ID, consumer, delivery count).
    public func pending(ms: UInt64, seq: UInt64, consumer: UnsafeRawBufferPointer, deliveries: UInt64) {
        // Laid out on the stack: a stream can hold millions of pending entries.
        let n = consumer.count
        let h = withUnsafeTemporaryAllocation(byteCount: n + 32, alignment: 8) { b -> Hash128 in
            let p = b.baseAddress!
            p.storeBytes(of: ms.littleEndian, as: UInt64.self)
            p.storeBytes(of: seq.littleEndian, toByteOffset: 8, as: UInt64.self)
            p.storeBytes(of: UInt64(n).littleEndian, toByteOffset: 16, as: UInt64.self)
            if n > 0 { (p + 24).copyMemory(from: consumer.baseAddress!, byteCount: n) }
            p.storeBytes(of: deliveries.littleEndian, toByteOffset: 24 + n, as: UInt64.self)
            return Hash128.of(UnsafeRawBufferPointer(start: p, count: n + 32))
        }
        pelSum = pelSum &+ h
        pelCount += 1
        capture?.pending(ms: ms, seq: seq, consumer: consumer, deliveries: deliveries)
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
        let bodyHash = oneShot ?? (ordered ? body.digest() : sum)
        return withUnsafeTemporaryAllocation(byteCount: 96, alignment: 8) { out in
            let p = out.baseAddress!
            p.storeBytes(of: type.rawValue, as: UInt8.self)
            var n = 1
            func put(_ v: UInt64) {
                (p + n).storeBytes(of: v.littleEndian, as: UInt64.self)
                n += 8
            }
            put(itemCount)
            put(bodyHash.low)
            put(bodyHash.high)
            switch type {
            case .stream:
                put(lastID.0)
                put(lastID.1)
                put(groupSum.low)
                put(groupSum.high)
                put(groupCount)
            case .module:
                put(moduleID)
            default:
                break
            }
            return Hash128.of(UnsafeRawBufferPointer(start: p, count: n))
        }
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

/// XXH3-128 of a byte stream written in small pieces: the pieces collect in a buffer, hashed in
/// one shot at the end; a stream that outgrows the buffer moves to a streaming state. Both
/// give the same digest for the same bytes.
public final class HashAccumulator {
    @usableFromInline @exclusivity(unchecked) var buf: UnsafeMutableRawPointer
    @usableFromInline @exclusivity(unchecked) var len = 0
    /// Bytes buffered before the stream moves to a streaming state.
    @usableFromInline static var capacity: Int { 32 * 1024 }
    @usableFromInline @exclusivity(unchecked) var streaming = false
    @usableFromInline let state = XXH3Stream()

    public init() {
        buf = .allocate(byteCount: Self.capacity + 16, alignment: 16)
        // Zeroed once: `writeDecimalComponent` stores whole words, past the bytes it formats.
        buf.initializeMemory(as: UInt8.self, repeating: 0, count: Self.capacity + 16)
    }
    deinit { buf.deallocate() }

    @inlinable
    public func reset() {
        len = 0
        streaming = false
    }

    @inlinable
    public func write(_ v: UInt64) {
        if len + 8 > Self.capacity { spill() }
        (buf + len).storeBytes(of: v.littleEndian, as: UInt64.self)
        len += 8
    }

    @inlinable
    public func write(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        if n == 0 { return }
        if len + n > Self.capacity {
            spill()
            if n > Self.capacity {
                state.update(bytes)
                return
            }
        }
        (buf + len).copyMemory(from: bytes.baseAddress!, byteCount: n)
        len += n
    }

    /// A length prefix and its bytes: one capacity test for both on the common path.
    @inlinable
    public func writeComponent(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        if len + 8 + n > Self.capacity {
            write(UInt64(n))
            write(bytes)
            return
        }
        (buf + len).storeBytes(of: UInt64(n).littleEndian, as: UInt64.self)
        if n > 0 { Self.copy(to: buf + len + 8, from: bytes.baseAddress!, n) }
        len += 8 + n
    }

    /// Copies `n` bytes: up to 16 with two overlapping loads and stores (never reading past
    /// the source), more with memmove, whose call costs more than the copy for short elements.
    @inlinable @inline(__always)
    public static func copy(to d: UnsafeMutableRawPointer, from s: UnsafeRawPointer, _ n: Int) {
        if n >= 8 && n <= 16 {
            let a = s.loadUnaligned(as: UInt64.self), b = s.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            d.storeBytes(of: a, as: UInt64.self)
            d.storeBytes(of: b, toByteOffset: n - 8, as: UInt64.self)
        } else if n >= 4 && n < 8 {
            let a = s.loadUnaligned(as: UInt32.self), b = s.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
            d.storeBytes(of: a, as: UInt32.self)
            d.storeBytes(of: b, toByteOffset: n - 4, as: UInt32.self)
        } else if n < 4 {
            for i in 0..<n { d.storeBytes(of: s.load(fromByteOffset: i, as: UInt8.self), toByteOffset: i, as: UInt8.self) }
        } else {
            d.copyMemory(from: s, byteCount: n)
        }
    }

    /// Copies `n` bytes; when `n` <= 64 and the source has 64 bytes readable, as 64 bytes moved
    /// whole, with no branch on `n` (the destination must have 64 bytes of room; what lies past
    /// `n` is rewritten or not hashed). Short elements of random lengths made the size-class
    /// branches of `copy` miss.
    @inlinable @inline(__always)
    public static func copyShort(to d: UnsafeMutableRawPointer, from s: UnsafeRawPointer, _ n: Int, readable: Int) {
        if n <= 64 && readable >= 64 {
            d.storeBytes(of: s.loadUnaligned(as: SIMD32<UInt8>.self), as: SIMD32<UInt8>.self)
            d.storeBytes(of: s.loadUnaligned(fromByteOffset: 32, as: SIMD32<UInt8>.self), toByteOffset: 32, as: SIMD32<UInt8>.self)
        } else if n > 0 {
            copy(to: d, from: s, n)
        }
    }

    /// Writes the length-prefixed `bytes` at `dst` (as `writeComponent` lays them out), which
    /// must have 8 + 64 bytes of room past it (see `copyShort`; `readable`: the bytes readable
    /// from `bytes`' start); returns the bytes it takes.
    @inlinable @inline(__always)
    public static func putComponent(_ bytes: UnsafeRawBufferPointer, at dst: UnsafeMutableRawPointer, readable: Int) -> Int {
        let n = bytes.count
        dst.storeBytes(of: UInt64(n).littleEndian, as: UInt64.self)
        if n > 0 { copyShort(to: dst + 8, from: bytes.baseAddress!, n, readable: readable) }
        return 8 &+ n
    }

    /// The length-prefixed decimal text of an integer (as `CanonicalDigester.withDecimal`
    /// gives it), formatted in place.
    @inlinable
    public func writeDecimalComponent(_ v: Int64) {
        if len + 8 + 48 > Self.capacity {
            CanonicalDigester.withDecimal(v) { writeComponent($0) }
            return
        }
        len += Self.putDecimalComponent(v, at: buf + len)
    }

    /// Writes the length-prefixed decimal text of `v` at `dst`, which must have 56 bytes of
    /// room; returns the bytes it takes (what lies past them is rewritten before it is hashed).
    @inlinable @inline(__always)
    public static func putDecimalComponent(_ v: Int64, at dst: UnsafeMutableRawPointer) -> Int {
        let m = v.magnitude
        if m < 10_000_000 {
            // Up to 7 digits (and a sign) in one word, stored once: digits stored piecemeal and
            // then loaded as a word stall the load until the stores retire.
            let all = eightDigits(m)
            // Leading zeros are the low bytes that hold "0"; 0 keeps its one digit.
            let zeros = min((all ^ 0x3030_3030_3030_3030).trailingZeroBitCount >> 3, 7)
            var w = all >> (8 &* UInt64(zeros))
            var n = 8 &- zeros
            if v < 0 {
                w = w << 8 | 0x2D
                n &+= 1
            }
            dst.storeBytes(of: UInt64(n).littleEndian, as: UInt64.self)
            (dst + 8).storeBytes(of: w.littleEndian, as: UInt64.self)
            return 8 &+ n
        }
        return putLongDecimalComponent(v, at: dst)
    }

    /// `putDecimalComponent` for 8 digits or more: digits written backwards two at a time into
    /// the 24 bytes behind the prefix, then moved to its start.
    @usableFromInline @inline(never)
    static func putLongDecimalComponent(_ v: Int64, at dst: UnsafeMutableRawPointer) -> Int {
        let m = v.magnitude
        let p = dst + 8
        let pairs = UnsafeRawPointer(decimalPairs.utf8Start)
        var i = 24
        var r = m
        while r >= 100 {
            let q = r / 100
            let d = Int(truncatingIfNeeded: r &- q &* 100)
            i &-= 2
            p.storeBytes(of: pairs.loadUnaligned(fromByteOffset: 2 &* d, as: UInt16.self), toByteOffset: i, as: UInt16.self)
            r = q
        }
        if r >= 10 {
            i &-= 2
            p.storeBytes(of: pairs.loadUnaligned(fromByteOffset: 2 &* Int(r), as: UInt16.self), toByteOffset: i, as: UInt16.self)
        } else {
            i &-= 1
            p.storeBytes(of: UInt8(truncatingIfNeeded: 48 &+ r), toByteOffset: i, as: UInt8.self)
        }
        if v < 0 {
            i &-= 1
            p.storeBytes(of: UInt8(ascii: "-"), toByteOffset: i, as: UInt8.self)
        }
        let n = 24 &- i
        p.copyMemory(from: p + i, byteCount: n)
        dst.storeBytes(of: UInt64(n).littleEndian, as: UInt64.self)
        return 8 &+ n
    }

    /// The eight decimal digits of `m` < 10⁸ as ASCII, most significant in the lowest byte,
    /// with leading zeros: 4-digit, then 2-digit, then 1-digit halves split in all lanes at once.
    @inlinable @inline(__always)
    static func eightDigits(_ m: UInt64) -> UInt64 {
        let hi = m / 10_000
        var x = hi | (m &- hi &* 10_000) << 32
        let hundreds = ((x &* 10486) >> 20) & 0x0000_007F_0000_007F  // x / 100 for x < 10⁴
        x = (x &- hundreds &* 100) << 16 | hundreds
        let tens = ((x &* 103) >> 10) & 0x000F_000F_000F_000F  // x / 10 for x < 100
        x = (x &- tens &* 10) << 8 | tens
        return x | 0x3030_3030_3030_3030
    }

    /// Carries on an item that `ItemWriter` began: its first `count` bytes are in the buffer.
    @usableFromInline
    func resume(at count: Int) {
        streaming = false
        len = count
    }

    @usableFromInline
    func spill() {
        if !streaming {
            state.reset()
            streaming = true
        }
        if len > 0 { state.update(buf, len) }
        len = 0
    }

    @inlinable
    public func digest() -> Hash128 {
        if !streaming { return Hash128.of(UnsafeRawBufferPointer(start: buf, count: len)) }
        if len > 0 { state.update(buf, len) }
        len = 0
        return state.digest()
    }
}

/// "00" … "99": two decimal digits per lookup.
@usableFromInline
let decimalPairs: StaticString =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

/// Writes the items of a value into the digest, with the write position, the running sum and
/// the count held here, in registers: kept in the digester, they are reloaded after every
/// store through its buffers, which made the per-element cost of short elements several times
/// the hash's. An unordered value's items are laid out one at a time in the item buffer and
/// hashed there; an item too long for it carries on through the digester from where it
/// stopped. An ordered value's elements are appended to the body buffer; one that does not fit
/// goes through the digester (which moves the buffer into the streaming hash) and the next
/// starts where it left off. A captured value goes through the digester throughout. The digest
/// is the same either way.
public struct ItemWriter {
    @usableFromInline let d: CanonicalDigester
    @usableFromInline let base: UnsafeMutableRawPointer
    /// Items are written here, not through the digester (the value is not captured).
    @usableFromInline let fast: Bool
    @usableFromInline let ordered: Bool
    /// The digester holds the current write position (the current item goes through it).
    @usableFromInline var general: Bool
    @usableFromInline var at = 0
    @usableFromInline var sum = Hash128.zero
    @usableFromInline var count: UInt64 = 0

    /// Bytes the buffer may fill here: its capacity less room for one integer's text.
    @usableFromInline static var room: Int { HashAccumulator.capacity - 64 }

    @inlinable
    public init(_ d: CanonicalDigester) {
        self.d = d
        ordered = d.ordered
        base = ordered ? d.body.buf : d.item.buf
        fast = !d.capturing
        general = !fast || ordered
    }

    @inlinable @inline(__always)
    public mutating func beginItem() {
        if ordered {
            if fast && general {
                at = d.body.len
                general = false
            } else if !fast {
                d.beginItem()
            }
            return
        }
        at = 0
        general = !fast
        if general { d.beginItem() }
    }

    /// The digester takes over from here: the rest of the current item goes through it.
    @inlinable @inline(__always)
    public mutating func toDigester() -> CanonicalDigester {
        if !general {
            if ordered { d.body.len = at } else { d.item.resume(at: at) }
            general = true
        }
        return d
    }

    @inlinable @inline(__always)
    public mutating func component(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        if !general && at &+ 8 &+ n <= Self.room {
            (base + at).storeBytes(of: UInt64(n).littleEndian, as: UInt64.self)
            if n > 0 { HashAccumulator.copy(to: base + at + 8, from: bytes.baseAddress!, n) }
            at = at &+ 8 &+ n
        } else {
            toDigester().component(bytes)
        }
    }

    @inlinable @inline(__always)
    public mutating func component(int v: Int64) {
        if !general && at &+ 64 <= Self.room {
            at = at &+ HashAccumulator.putDecimalComponent(v, at: base + at)
        } else {
            toDigester().component(int: v)
        }
    }

    @inlinable @inline(__always)
    public mutating func component(_ e: Element) {
        switch e {
        case .bytes(let b): component(b)
        case .int(let v): component(int: v)
        }
    }

    @inlinable @inline(__always)
    public mutating func fixed(_ v: UInt64) {
        if !general && at &+ 8 <= Self.room {
            (base + at).storeBytes(of: v.littleEndian, as: UInt64.self)
            at = at &+ 8
        } else {
            toDigester().fixed(v)
        }
    }

    @inlinable @inline(__always)
    public mutating func score(_ v: Double) { fixed(CanonicalDigester.canonicalBits(v)) }

    @inlinable @inline(__always)
    public mutating func endItem() {
        if ordered && fast {
            count &+= 1
        } else if general {
            d.endItem()
        } else {
            sum = sum &+ Hash128.of(UnsafeRawBufferPointer(start: base, count: at))
            count &+= 1
        }
    }

    /// The item buffer, for a caller that lays out and hashes unordered items itself and adds
    /// them with `addItems`; nil when items go elsewhere (an ordered or a captured value).
    /// Between items only: an item begun here must be ended here.
    @inlinable
    public var unorderedItemBuffer: UnsafeMutableRawPointer? { !ordered && fast ? base : nil }

    /// Bytes an item laid out by the caller may take in `unorderedItemBuffer`.
    @inlinable
    public static var itemRoom: Int { room }

    /// Items laid out and hashed by the caller: how many, and the sum of their hashes.
    @inlinable
    public mutating func addItems(_ n: UInt64, sum s: Hash128) {
        sum = sum &+ s
        count &+= n
    }

    /// For a caller appending the elements of an ordered value itself: the body buffer and the
    /// position to write at (nil for an unordered or a captured value). Each element is one
    /// item, written as `component` writes it; `appended` then records them. Between items only.
    @inlinable
    public mutating func orderedTail() -> (UnsafeMutableRawPointer, Int)? {
        guard ordered && fast else { return nil }
        if general {
            at = d.body.len
            general = false
        }
        return (base, at)
    }

    /// `n` single-component items appended to the body buffer up to `end`.
    @inlinable
    public mutating func appended(to end: Int, items n: UInt64) {
        at = end
        count &+= n
    }

    /// Hands what was written here to the digester; call once, after the last item.
    @inlinable
    public mutating func finish() {
        if ordered && fast { _ = toDigester() }
        if count > 0 { d.add(items: count, sum: sum) }
    }
}
