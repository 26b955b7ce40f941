import CKernels
import CXXHash

/// A 128-bit hash value (XXH3-128), used for value digests and the order-independent sums
/// that make sets, hashes and sorted sets independent of their order.
public struct Hash128: Hashable, Sendable, CustomStringConvertible {
    public var low: UInt64
    public var high: UInt64

    public init(low: UInt64, high: UInt64) {
        self.low = low
        self.high = high
    }

    public static let zero = Hash128(low: 0, high: 0)

    /// Wrapping 128-bit addition: the order-independent combination of member hashes.
    @inlinable
    public static func &+ (a: Hash128, b: Hash128) -> Hash128 {
        let (lo, carry) = a.low.addingReportingOverflow(b.low)
        return Hash128(low: lo, high: a.high &+ b.high &+ (carry ? 1 : 0))
    }

    @inlinable
    public static func &- (a: Hash128, b: Hash128) -> Hash128 {
        let (lo, borrow) = a.low.subtractingReportingOverflow(b.low)
        return Hash128(low: lo, high: a.high &- b.high &- (borrow ? 1 : 0))
    }

    /// Big-endian hex of the canonical XXH128 representation (high half first).
    public var description: String { Self.hex(high) + Self.hex(low) }

    public init?(hex: String) {
        guard hex.count == 32, let hi = UInt64(hex.prefix(16), radix: 16),
            let lo = UInt64(hex.suffix(16), radix: 16)
        else { return nil }
        self.init(low: lo, high: hi)
    }

    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    /// One-shot XXH3-128 of a byte range.
    @inlinable
    public static func of(_ bytes: UnsafeRawBufferPointer) -> Hash128 {
        if bytes.count <= SD_XXH3_SHORT {
            let h = sd_xxh3_128_short(bytes.baseAddress, bytes.count)
            return Hash128(low: h.low, high: h.high)
        }
        let h = xxh3Hash128(bytes.baseAddress, bytes.count)
        return Hash128(low: h.low64, high: h.high64)
    }

    public static func of(_ bytes: [UInt8]) -> Hash128 { bytes.withUnsafeBytes { of($0) } }
}

/// One code path per binary: the x86 dispatcher picks the fastest vector unit at run time.
@inlinable @inline(__always)
func xxh3Hash128(_ p: UnsafeRawPointer?, _ n: Int) -> XXH128_hash_t {
    #if arch(x86_64)
        return XXH3_128bits_dispatch(p, n)
    #else
        return XXH3_128bits(p, n)
    #endif
}

/// A streaming XXH3-128 state owned by one Swift value; freed when it goes.
public final class XXH3Stream {
    @usableFromInline let state: OpaquePointer

    public init() {
        state = XXH3_createState()
        XXH3_128bits_reset(state)
    }

    deinit { XXH3_freeState(state) }

    @inlinable public func reset() { XXH3_128bits_reset(state) }

    @inlinable
    public func update(_ p: UnsafeRawPointer, _ n: Int) {
        #if arch(x86_64)
            XXH3_128bits_update_dispatch(state, p, n)
        #else
            XXH3_128bits_update(state, p, n)
        #endif
    }

    @inlinable
    public func update(_ bytes: UnsafeRawBufferPointer) {
        if let b = bytes.baseAddress, bytes.count > 0 { update(b, bytes.count) }
    }

    @inlinable
    public func update<T>(value: T) {
        withUnsafeBytes(of: value) { update($0) }
    }

    @inlinable
    public func digest() -> Hash128 {
        let h = XXH3_128bits_digest(state)
        return Hash128(low: h.low64, high: h.high64)
    }
}
