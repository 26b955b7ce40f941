/// The keys of a batch laid end to end in one buffer. A live side lists and reads hundreds of
/// thousands of keys: an array per key cost an allocation, a free and reference counting at
/// every hand-over (SCAN reply, batch, fetch, key table), for bytes read once.
struct KeyList: Sendable, RandomAccessCollection {
    private(set) var bytes: [UInt8] = []
    /// Where each key ends in `bytes`.
    private var ends: [Int] = []

    init() {}

    init(_ keys: [[UInt8]]) {
        reserve(keys: keys.count, bytes: keys.reduce(0) { $0 + $1.count })
        for k in keys { append(k) }
    }

    var startIndex: Int { 0 }
    var endIndex: Int { ends.count }

    /// Key `i` (a slice of the shared buffer; `withKeys` reads keys without one).
    subscript(i: Int) -> ArraySlice<UInt8> { bytes[start(i)..<ends[i]] }

    /// All keys' bytes together.
    var byteCount: Int { bytes.count }

    private func start(_ i: Int) -> Int { i == 0 ? 0 : ends[i - 1] }

    mutating func reserve(keys: Int, bytes n: Int) {
        ends.reserveCapacity(ends.count + keys)
        bytes.reserveCapacity(bytes.count + n)
    }

    mutating func append(_ key: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: key)
        ends.append(bytes.count)
    }

    mutating func append(_ key: some Collection<UInt8>) {
        bytes.append(contentsOf: key)
        ends.append(bytes.count)
    }

    /// The keys in place, for a loop over many of them (a slice or a `withUnsafeBytes` per
    /// key cost reference counting per key).
    func withKeys<R>(_ body: (Keys) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes { b in try ends.withUnsafeBufferPointer { e in try body(Keys(bytes: b, ends: e)) } }
    }

    /// Keys read in place (valid only inside `withKeys`).
    struct Keys {
        let bytes: UnsafeRawBufferPointer
        let ends: UnsafeBufferPointer<Int>

        subscript(i: Int) -> UnsafeRawBufferPointer {
            UnsafeRawBufferPointer(rebasing: bytes[(i == 0 ? 0 : ends[i - 1])..<ends[i]])
        }
    }

    /// Keys `range` as a list of their own.
    func keys(_ range: Range<Int>) -> KeyList {
        var out = KeyList()
        guard !range.isEmpty else { return out }
        let from = start(range.lowerBound), to = ends[range.upperBound - 1]
        out.bytes = Array(bytes[from..<to])
        out.ends = ends[range].map { $0 - from }
        return out
    }

    /// Drops the first `n` keys.
    mutating func removeFirst(_ n: Int) {
        guard n > 0 else { return }
        let cut = ends[n - 1]
        bytes.removeFirst(cut)
        ends.removeFirst(n)
        for j in ends.indices { ends[j] -= cut }
    }
}
