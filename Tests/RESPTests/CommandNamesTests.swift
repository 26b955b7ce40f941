import NIOCore
import Testing

@testable import RESP

/// A server's own names for commands, applied where a batch is sent.
@Suite struct CommandNamesTests {
    func encoded(_ commands: [[RESPArg]], asking: Bool = false) -> RESPBatch {
        let b = RESPBatch(asking: asking)
        for c in commands { b.command(c) }
        return b
    }

    func bytes(_ b: RESPBatch) -> [UInt8] { Array(b.bytes) }

    @Test func renamedNamesReplaceTheOriginalsInAnyCase() {
        let names = CommandNames(["dump": "d-1", "TYPE": "t"])
        let r = names.apply(to: encoded([["DUMP", "k"], ["type", "k\r\n"], ["GET", "x"]]), allocator: .init())
        #expect(Array(r.buffer.readableBytesView) == bytes(encoded([["d-1", "k"], ["t", "k\r\n"], ["GET", "x"]])))
        #expect(r.count == 3 && r.local.isEmpty)
    }

    @Test func disabledCommandsAreNotSentAndAnswerAsUnknown() {
        let names = CommandNames(["DUMP": ""])
        let r = names.apply(to: encoded([["PTTL", "k"], ["DUMP", "k"], ["TYPE", "k"]]), allocator: .init())
        #expect(Array(r.buffer.readableBytesView) == bytes(encoded([["PTTL", "k"], ["TYPE", "k"]])))
        #expect(r.count == 2 && r.local.keys.sorted() == [1])
        #expect(r.local[1]?.serverError?.message.contains("unknown command 'DUMP'") == true)
    }

    /// ASKING before a command not sent is not sent either: it would hold for the next command.
    @Test func askingGoesWithItsCommand() {
        let names = CommandNames(["DUMP": ""])
        let r = names.apply(to: encoded([["DUMP", "a"], ["TYPE", "b"]], asking: true), allocator: .init())
        #expect(Array(r.buffer.readableBytesView) == bytes(encoded([["TYPE", "b"]], asking: true)))
        #expect(r.count == 2 && r.local.keys.sorted() == [0, 1] && r.local[0] == .simpleString(ByteBuffer(string: "OK")))
    }

    @Test func theWidestCommandIsKnown() {
        let b = encoded([["PING"], ["EXISTS", "a", "b", "c"]])
        #expect(b.widest == 4)
        let c = encoded([["GET", "x"]])
        c.append(b)
        #expect(c.widest == 4 && RESPBatch.argumentLimit == 3999)
    }
}
