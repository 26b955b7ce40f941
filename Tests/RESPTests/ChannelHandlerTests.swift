import NIOCore
import NIOEmbedded
import Testing

@testable import RESP

/// The channel handler on a test channel: replies arrive in reads cut anywhere, as TCP
/// delivers them, and each request gets exactly its replies.
@Suite("RESP channel handler")
struct ChannelHandlerTests {
    /// Replies of every common shape; the bulk strings longer than a read come in many pieces.
    static func replies() -> [(String, RESPValue)] {
        let big = String(repeating: "0123456789abcdef", count: 12_000)  // 192,000 bytes
        let mid = String(repeating: "x", count: 3000)
        return [
            ("+OK\r\n", .simpleString(ByteBuffer(string: "OK"))),
            (":-2\r\n", .integer(-2)),
            ("$6\r\nstring\r\n", .bulkString(ByteBuffer(string: "string"))),
            ("$\(big.utf8.count)\r\n\(big)\r\n", .bulkString(ByteBuffer(string: big))),
            ("$-1\r\n", .null),
            ("*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n", .array([.bulkString(ByteBuffer(string: "0")), .array([.bulkString(ByteBuffer(string: "k"))])])),
            ("-WRONGTYPE no\r\n", .error(RedisServerError("WRONGTYPE no"))),
            ("$\(mid.utf8.count)\r\n\(mid)\r\n", .bulkString(ByteBuffer(string: mid))),
            ("$0\r\n\r\n", .bulkString(ByteBuffer())),
            (":1234567890123\r\n", .integer(1_234_567_890_123)),
            ("$\(big.utf8.count)\r\n\(big)\r\n", .bulkString(ByteBuffer(string: big)))
        ]
    }

    /// Sends requests of `sizes` commands, feeds `stream` in reads of the given lengths (the
    /// last read takes the rest), and returns each request's replies.
    static func exchange(sizes: [Int], stream: [UInt8], reads: [Int]) async throws -> [[RESPValue]] {
        let channel = EmbeddedChannel()
        let handler = RedisChannelHandler(endpoint: "test", parser: RESPParser(), tls: false, status: ChannelStatus())
        try channel.pipeline.syncOperations.addHandler(handler)
        var promises: [EventLoopPromise<[RESPValue]>] = []
        for n in sizes {
            let promise = channel.eventLoop.makePromise(of: [RESPValue].self)
            promises.append(promise)
            try channel.writeOutbound(RedisRequest(buffer: ByteBuffer(string: "*1\r\n$4\r\nPING\r\n"), count: n, promise: promise, timeout: nil))
        }
        var at = 0
        for length in reads + [stream.count] where at < stream.count && length > 0 {
            let end = min(stream.count, at + length)
            try channel.writeInbound(ByteBuffer(bytes: stream[at..<end]))
            at = end
        }
        var out: [[RESPValue]] = []
        for p in promises { out.append(try await p.futureResult.get()) }
        _ = try? channel.finish()
        return out
    }

    @Test("replies read in pieces of any size give the same values", arguments: [1, 2, 5, 7, 64, 1000, 4096, 65536, 1 << 20])
    func piecesOfAnySize(_ size: Int) async throws {
        let all = Self.replies()
        let stream = Array(all.map(\.0).joined().utf8)
        let reads = [Int](repeating: size, count: stream.count / size + 1)
        let got = try await Self.exchange(sizes: [all.count], stream: stream, reads: reads)
        #expect(got == [all.map(\.1)])
    }

    @Test("a stream cut in two and in three anywhere; two requests written at once each get theirs")
    func cutAnywhere() async throws {
        let all = Self.replies().filter { $0.0.utf8.count < 5000 }
        let stream = Array(all.map(\.0).joined().utf8)
        let expected = [Array(all.prefix(1).map(\.1)), Array(all.dropFirst().map(\.1))]
        for cut in 0...stream.count {
            let got = try await Self.exchange(sizes: [1, all.count - 1], stream: stream, reads: [cut])
            #expect(got == expected, "cut at \(cut)")
            let second = (cut * 7919) % (stream.count - cut + 1)
            let three = try await Self.exchange(sizes: [1, all.count - 1], stream: stream, reads: [cut, second])
            #expect(three == expected, "cut at \(cut) and \(cut + second)")
        }
    }
}
