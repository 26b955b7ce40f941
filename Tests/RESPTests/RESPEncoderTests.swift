import HashSlots
import NIOCore
import Testing

@testable import RESP

@Suite("RESP command encoding")
struct RESPEncoderTests {
    @Test("commands are arrays of binary-safe bulk strings")
    func encode() {
        let key: [UInt8] = [0x00, 0xFF, 13, 10, UInt8(ascii: "k")]
        var b = ByteBuffer()
        RESPEncoder.encode(["SET", RESPArg(key), RESPArg(12)], into: &b)
        var expected = Array("*3\r\n$3\r\nSET\r\n$5\r\n".utf8)
        expected += key
        expected += Array("\r\n$2\r\n12\r\n".utf8)
        #expect(Array(b.readableBytesView) == expected)
    }

    @Test("a batch is the commands back to back; an empty argument is $0")
    func batch() {
        let b = RESPEncoder.encode([["PING"], ["ECHO", ""]])
        #expect(String(buffer: b) == "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n")
    }

    @Test("a RESPBatch: bulk strings for bytes and numbers, growing as needed, ASKING before each command when asked")
    func builtBatch() {
        let key: [UInt8] = [0x00, 0xFF, 13, 10]
        let numbers = [0, 7, 10, 99, 4_194_303, -1, -12345, Int.max, Int.min + 1]
        let batch = RESPBatch(capacity: 8)
        batch.begin(2 + numbers.count)
        batch.arg("GETRANGE")
        batch.arg(key)
        for n in numbers { batch.arg(n) }
        batch.command(["ECHO", ""])
        let big = [UInt8](repeating: 120, count: 12_345)
        batch.begin(1)
        batch.arg(big)
        func bulk(_ b: [UInt8]) -> [UInt8] { Array("$\(b.count)\r\n".utf8) + b + [13, 10] }
        var expected = Array("*\(2 + numbers.count)\r\n".utf8) + bulk(Array("GETRANGE".utf8)) + bulk(key)
        for n in numbers { expected += bulk(Array(String(n).utf8)) }
        expected += Array("*2\r\n$4\r\nECHO\r\n$0\r\n\r\n*1\r\n".utf8) + bulk(big)
        #expect(Array(batch.buffer().readableBytesView) == expected && batch.count == 3)
        let asking = RESPBatch(asking: true)
        asking.command(["DUMP", "k"])
        asking.command(["TYPE", "k"])
        #expect(
            String(buffer: asking.buffer())
                == "*1\r\n$6\r\nASKING\r\n*2\r\n$4\r\nDUMP\r\n$1\r\nk\r\n*1\r\n$6\r\nASKING\r\n*2\r\n$4\r\nTYPE\r\n$1\r\nk\r\n"
                && asking.count == 4)
    }

    @Test("arguments of every length up to 300 keep their bytes, and so does what surrounds them")
    func everyLength() {
        let batch = RESPBatch(capacity: 8)
        var expected: [UInt8] = []
        for n in 0...300 {
            let arg = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ n) }
            batch.begin(2)
            batch.arg(arg)
            batch.arg(n)
            expected += Array("*2\r\n$\(n)\r\n".utf8) + arg + Array("\r\n$\(String(n).utf8.count)\r\n\(n)\r\n".utf8)
        }
        #expect(Array(batch.bytes) == expected)
    }

    @Test("words encoded beforehand give the bytes of the same arguments added one by one")
    func encodedWords() {
        let key: [UInt8] = [0, 13, 10, 255]
        let one = RESPBatch(), words = RESPBatch()
        one.command(["MEMORY", "USAGE", RESPArg(key), "SAMPLES", "0"])
        words.begin(5, RESPWords("MEMORY", "USAGE"))
        words.arg(key)
        words.args(RESPWords("SAMPLES", "0"))
        #expect(Array(words.bytes) == Array(one.bytes) && words.count == 1 && words.widest == 5)
    }

    @Test("arguments from bytes, buffers, text and numbers")
    func arguments() {
        #expect(RESPArg(ByteBuffer(string: "ab")).bytes == [97, 98])
        #expect(RESPArg([1, 2][...]).bytes == [1, 2])
        #expect(RESPArg(-5).bytes == Array("-5".utf8))
        #expect(RESPArg("é").bytes == [0xC3, 0xA9])
        #expect(RESPArg([0, 65, 200]).description == "\\x00A\\xc8")
    }

    @Test("commands that carry passwords are shown without them")
    func redacted() {
        #expect(RESPCommand.redacted(["HELLO", "3", "AUTH", "u", "hunter2"]) == "HELLO ***")
        #expect(RESPCommand.redacted(["auth", "hunter2"]) == "AUTH ***")
        #expect(RESPCommand.redacted(["GET", "k"]) == "GET k")
    }
}

@Suite("hash slots")
struct HashSlotTests {
    @Test(
        "slots of known keys",
        arguments: [
            ("foo", 12182), ("bar", 5061), ("123456789", 0x31C3 & 0x3FFF), ("", 0),
            ("{user1000}.following", 3443), ("{user1000}.followers", 3443),
            ("foo{}{bar}", 8363), ("foo{{bar}}zap", 4015), ("foo{bar}{zap}", 5061), ("{bar", 4015)
        ])
    func slot(_ key: String, _ expected: Int) {
        #expect(HashSlot(key: Array(key.utf8)).rawValue == UInt16(expected))
    }

    @Test("hash tags")
    func tags() {
        #expect(HashSlot(key: Array("{user1000}.following".utf8)) == HashSlot(key: Array("{user1000}.followers".utf8)))
        #expect(HashSlot(key: Array("foo{bar}".utf8)) == HashSlot(key: Array("bar".utf8)))
    }

    @Test("slot values and ranges")
    func values() {
        #expect(HashSlot(16383) != nil)
        #expect(HashSlot(16384) == nil)
        #expect(HashSlot(rawValue: 16384) == nil)
        #expect(HashSlot.all.count == 16384)
        #expect((HashSlot(10)!...HashSlot(12)!).map(\.rawValue) == [10, 11, 12])
    }
}
