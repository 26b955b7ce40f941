import Testing

@testable import Keyspace

/// A batch's keys end to end in one buffer: every key listed must come out whole, once, in
/// order, through the slicing and trimming the listing does between SCAN replies and batches.
@Suite("key lists")
struct KeyListTests {
    static let keys: [[UInt8]] = (0..<50).map { n in (0..<(n % 7 == 0 ? 0 : n)).map { UInt8(truncatingIfNeeded: $0 &+ n) } }

    @Test("keys come back as they were added, through ranges and trimming")
    func keysKeptWhole() {
        let list = KeyList(Self.keys)
        #expect(list.map { Array($0) } == Self.keys)
        #expect(list.byteCount == Self.keys.reduce(0) { $0 + $1.count })
        for cut in [0, 1, 7, 49, 50] {
            #expect(list.keys(0..<cut).map { Array($0) } == Array(Self.keys[..<cut]))
            #expect(list.keys(cut..<50).map { Array($0) } == Array(Self.keys[cut...]))
            var trimmed = list
            trimmed.removeFirst(cut)
            #expect(trimmed.map { Array($0) } == Array(Self.keys[cut...]))
            trimmed.append([1, 2, 3])
            #expect(trimmed.last.map { Array($0) } == [1, 2, 3] && trimmed.count == 51 - cut)
        }
        list.withKeys { k in
            for i in list.indices { #expect(Array(k[i]) == Self.keys[i]) }
        }
    }
}
