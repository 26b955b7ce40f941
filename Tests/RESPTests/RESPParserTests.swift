import NIOCore
import Testing

@testable import RESP

func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }
func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

/// Parses every value in `text`, requiring the buffer to be consumed exactly.
func parseAll(_ text: String, parser: RESPParser = RESPParser()) throws -> [RESPValue] {
    var b = buffer(text)
    var out: [RESPValue] = []
    while let v = try parser.parse(&b) { out.append(v) }
    #expect(b.readableBytes == 0, "bytes left over")
    return out
}

@Suite("RESP parser")
struct RESPParserTests {
    static let samples: [(String, RESPValue)] = [
        ("+OK\r\n", .simpleString(buffer("OK"))),
        ("+\r\n", .simpleString(buffer(""))),
        ("-ERR unknown command 'X'\r\n", .error(RedisServerError("ERR unknown command 'X'"))),
        (":0\r\n", .integer(0)),
        (":-42\r\n", .integer(-42)),
        (":+7\r\n", .integer(7)),
        (":9223372036854775807\r\n", .integer(.max)),
        (":-9223372036854775808\r\n", .integer(.min)),
        ("$5\r\nhello\r\n", .bulkString(buffer("hello"))),
        ("$0\r\n\r\n", .bulkString(buffer(""))),
        ("$4\r\na\r\nb\r\n", .bulkString(buffer("a\r\nb"))),
        ("$-1\r\n", .null),
        ("*-1\r\n", .null),
        ("_\r\n", .null),
        ("*0\r\n", .array([])),
        ("*2\r\n$3\r\nfoo\r\n:1\r\n", .array([.bulkString(buffer("foo")), .integer(1)])),
        ("*2\r\n*1\r\n+a\r\n*0\r\n", .array([.array([.simpleString(buffer("a"))]), .array([])])),
        (",3.25\r\n", .double(3.25)),
        (",-1e10\r\n", .double(-1e10)),
        (",inf\r\n", .double(.infinity)),
        (",-inf\r\n", .double(-.infinity)),
        ("#t\r\n", .boolean(true)),
        ("#f\r\n", .boolean(false)),
        ("(3492890328409238509324850943850943825024385\r\n", .bigNumber("3492890328409238509324850943850943825024385")),
        ("(-12\r\n", .bigNumber("-12")),
        ("=15\r\ntxt:Some string\r\n", .verbatimString(format: "txt", buffer("Some string"))),
        ("!21\r\nSYNTAX invalid syntax\r\n", .error(RedisServerError("SYNTAX invalid syntax"))),
        (
            "%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n",
            .map([RESPPair(.simpleString(buffer("a")), .integer(1)), RESPPair(.simpleString(buffer("b")), .integer(2))])
        ),
        ("~2\r\n+x\r\n+y\r\n", .set([.simpleString(buffer("x")), .simpleString(buffer("y"))])),
        (">2\r\n+message\r\n+hi\r\n", .push([.simpleString(buffer("message")), .simpleString(buffer("hi"))])),
        // An attribute annotates the next value and is dropped, at the top level or nested.
        ("|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*1\r\n:2\r\n", .array([.integer(2)])),
        ("*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n:2\r\n", .array([.integer(1), .integer(2)]))
    ]

    @Test("every type parses", arguments: samples)
    func parsesType(_ sample: (String, RESPValue)) throws {
        #expect(try parseAll(sample.0) == [sample.1])
    }

    @Test("a reply taken from its array leaves an error, not a null that reads as no such key")
    func takenReply() {
        var replies: [RESPValue] = [.bulkString(buffer("v")), .null]
        #expect(replies.take(0) == .bulkString(buffer("v")))
        #expect(replies[0].serverError != nil && !replies[0].isNull)
        #expect(replies.take(1) == .null)
    }

    @Test("NaN parses")
    func nan() throws {
        let v = try parseAll(",nan\r\n")
        guard case .double(let d) = v.first else { Issue.record("not a double"); return }
        #expect(d.isNaN)
    }

    @Test("fed one byte at a time: nil until complete, nothing consumed before", arguments: samples)
    func incremental(_ sample: (String, RESPValue)) throws {
        let parser = RESPParser()
        let bytes = Array(sample.0.utf8)
        var b = ByteBuffer()
        for (i, byte) in bytes.enumerated() {
            b.writeInteger(byte)
            let start = b.readerIndex
            let v = try parser.parse(&b)
            if i < bytes.count - 1 {
                #expect(v == nil, "value before the last byte at \(i)")
                #expect(b.readerIndex == start)
            } else {
                #expect(v == sample.1)
                #expect(b.readableBytes == 0)
            }
        }
    }

    @Test("a stream of replies of every type, split at every possible point")
    func splitStream() throws {
        let stream = Self.samples.map(\.0).joined()
        let expected = Self.samples.map(\.1)
        let bytes = Array(stream.utf8)
        for cut in stride(from: 0, through: bytes.count, by: 7) {
            var b = ByteBuffer(bytes: bytes[..<cut])
            var got: [RESPValue] = []
            while let v = try RESPParser().parse(&b) { got.append(v) }
            b.writeBytes(bytes[cut...])
            while let v = try RESPParser().parse(&b) { got.append(v) }
            #expect(got == expected, "cut at \(cut)")
        }
    }

    @Test("binary bulk strings keep every byte")
    func binary() throws {
        let payload = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 37) } + [13, 10, 0, 13, 10]
        var b = buffer("$\(payload.count)\r\n")
        b.writeBytes(payload)
        b.writeString("\r\n")
        let v = try RESPParser().parse(&b)
        #expect(v?.bytes == payload)
    }

    @Test("accessors convert RESP2 and RESP3 shapes")
    func accessors() throws {
        let resp2 = try parseAll("*4\r\n$4\r\nname\r\n$3\r\nbob\r\n$3\r\nage\r\n:7\r\n")[0]
        let resp3 = try parseAll("%2\r\n$4\r\nname\r\n$3\r\nbob\r\n$3\r\nage\r\n:7\r\n")[0]
        for v in [resp2, resp3] {
            #expect(v["name"]?.string == "bob")
            #expect(v["age"]?.int == 7)
            #expect(v["none"] == nil)
        }
        #expect(RESPValue.bulkString(buffer("12")).int == 12)
        #expect(RESPValue.bulkString(buffer("1.5")).double == 1.5)
        #expect(RESPValue.null.isNull)
    }

    static let malformed: [(String, String)] = [
        ("?foo\r\n", "unknown type"),
        (":12a\r\n", "invalid digit"),
        (":\r\n", "empty number"),
        (":99999999999999999999\r\n", "out of 64-bit range"),
        ("+OK\rX", "CR not followed by LF"),
        ("+OK\n", "LF without CR"),
        ("$3\r\nabcd\r\n", "not followed by CRLF"),
        ("$-2\r\n", "invalid length"),
        ("*-5\r\n", "invalid length"),
        ("%-1\r\n", "invalid length"),
        ("$?\r\n;4\r\nabcd\r\n;0\r\n", "streamed"),
        ("#x\r\n", "boolean"),
        ("_x\r\n", "null with content"),
        (",1.2.3\r\n", "invalid double"),
        (",\r\n", "invalid double"),
        ("(12x\r\n", "invalid big number"),
        ("=3\r\ntxt\r\n", "verbatim"),
        ("*2\r\n:1\r\n:x\r\n", "invalid digit")
    ]

    @Test("malformed input throws a clear error and consumes nothing", arguments: malformed)
    func rejects(_ sample: (String, String)) {
        var b = buffer(sample.0)
        do {
            _ = try RESPParser().parse(&b)
            Issue.record("accepted \(sample.0.debugDescription)")
        } catch {
            #expect(error.reason.contains(sample.1), "\(error)")
            #expect(error.description.hasPrefix("malformed RESP at byte"))
        }
        #expect(b.readerIndex == 0)
    }

    @Test("nesting is capped")
    func depth() throws {
        func nested(_ n: Int) -> String { String(repeating: "*1\r\n", count: n) + ":1\r\n" }
        let parser = RESPParser(maxDepth: 8)
        #expect(try parseAll(nested(8), parser: parser).count == 1)
        var b = buffer(nested(9))
        #expect(throws: RESPParseError.self) { _ = try parser.parse(&b) }
        // The default cap stops a hostile 100k-deep reply without exhausting the stack.
        var deep = buffer(nested(100_000))
        #expect(throws: RESPParseError.self) { _ = try RESPParser().parse(&deep) }
    }

    @Test("over-long lines and bulk strings are refused before they arrive")
    func limits() {
        var line = buffer(String(repeating: "+", count: 200))
        #expect(throws: RESPParseError.self) { _ = try RESPParser(maxLineLength: 100).parse(&line) }
        var bulk = buffer("$1000\r\n")
        #expect(throws: RESPParseError.self) { _ = try RESPParser(maxBulkLength: 999).parse(&bulk) }
    }

    @Test("an aggregate announcing many elements waits without allocating")
    func hugeCount() throws {
        var b = buffer("*2000000000\r\n:1\r\n")
        #expect(try RESPParser().parse(&b) == nil)
    }
}
