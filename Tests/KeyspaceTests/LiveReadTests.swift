import Foundation
import HashSlots
import Logging
import NIOConcurrencyHelpers
import RESP
import SlotdiffCore
import Testing

@testable import Keyspace

/// The live read path against scripted servers: what each reply makes the reader do. No real
/// server is involved; every server behaviour here (refusals, redirections mid-read, restarts,
/// slots that grow, cursors that are not slot-ordered) is one a real server shows under load or
/// restrictions, which the end-to-end suites meet only by chance.
@Suite struct LiveReadTests {
    static let keyspace = Reply.bulk("# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n")

    func options(_ edit: (inout LiveOptions) -> Void = { _ in }) -> LiveOptions {
        var o = LiveOptions()
        o.workers = 1
        o.reconnectAttempts = 3
        edit(&o)
        return o
    }

    func side(_ server: FakeServer, _ options: LiveOptions) async throws -> LiveSide {
        try await LiveSide.open(endpoint: RedisEndpoint(host: "127.0.0.1", port: server.port), options: options)
    }

    /// Answers for a two-string keyspace; `override` answers first where it returns a reply.
    static func strings(_ override: @escaping @Sendable ([String]) -> Reply? = { _ in nil }) -> FakeServer.Script {
        { c, _ in
            if let r = override(c) { return r }
            switch c[0].uppercased() {
            case "INFO": return keyspace
            case "SCAN": return .array([.bulk("0"), .array([.bulk("a"), .bulk("b")])])
            case "PEXPIRETIME": return .int(-1)
            case "TYPE": return .simple("string")
            case "GETRANGE": return .bulk("value-" + c[1])
            default: return .error("ERR unexpected \(c[0])")
            }
        }
    }

    @Test func refusedTypeIsAnErrorNamingTheGrant() async throws {
        let server = try FakeServer(
            script: Self.strings { c in
                c[0] == "TYPE" ? .error("NOPERM User checker has no permissions to run the 'type' command") : nil
            })
        defer { server.stop() }
        let s = try await side(server, options())
        defer { Task { await s.close() } }
        await #expect(throws: SlotdiffError.self) { _ = try await s.collect(filter: KeyFilter()) }
        do { _ = try await s.collect(filter: KeyFilter()) } catch let e as SlotdiffError {
            #expect(e.description.contains("TYPE refused") && e.description.contains("+type") && e.description.contains("127.0.0.1:\(server.port)"))
        }
    }

    @Test func renamedCommandSaysSo() async throws {
        let server = try FakeServer(
            script: Self.strings { c in
                c[0] == "GETRANGE" ? .error("ERR unknown command 'GETRANGE', with args beginning with: 'a' '0' ") : nil
            })
        defer { server.stop() }
        let s = try await side(server, options())
        defer { Task { await s.close() } }
        do {
            _ = try await s.collect(filter: KeyFilter())
            Issue.record("an unknown command read as a value")
        } catch let e as SlotdiffError {
            #expect(e.description.contains("GETRANGE refused") && e.description.contains("renamed"), "\(e)")
        }
    }

    /// LOADING (a server starting again) is waited out, not read as an answer.
    @Test func loadingIsRetried() async throws {
        let loading = NIOLockedBox(2)
        let server = try FakeServer(
            script: Self.strings { c in
                c[0] == "PEXPIRETIME" && !c[1].hasPrefix("slotdiff-probe-") && loading.take()
                    ? .error("LOADING Redis is loading the dataset in memory") : nil
            })
        defer { server.stop() }
        let s = try await side(server, options())
        defer { Task { await s.close() } }
        let (tables, _) = try await s.collect(filter: KeyFilter())
        #expect(tables.map(\.count).reduce(0, +) == 2)
        #expect(server.received("PEXPIRETIME").count == 4)
    }

    /// WRONGTYPE between the probe and the read: the key was replaced; it is read again from
    /// the start (its new type asked again), never skipped.
    @Test func replacedKeyIsReadAgain() async throws {
        let once = NIOLockedBox(1)
        let server = try FakeServer(
            script: Self.strings { c in
                if c[0] == "GETRANGE", c[1] == "b", once.take() { return .error("WRONGTYPE Operation against a key holding the wrong kind of value") }
                return nil
            })
        defer { server.stop() }
        let s = try await side(server, options())
        defer { Task { await s.close() } }
        let (tables, _) = try await s.collect(filter: KeyFilter())
        #expect(tables.map(\.count).reduce(0, +) == 2)
        #expect(server.received("TYPE").filter { $0[1] == "b" }.count == 2)
    }

    /// DUMP refused and PEXPIRETIME unknown (renamed away): the node's plan switches at the
    /// first such reply, for the rest of the check — values by HSCAN, expiries by PTTL — and
    /// the side says so; neither command is sent again.
    @Test func refusedDumpAndExpiryFallBack() async throws {
        let server = try FakeServer { c, _ in
            switch c[0].uppercased() {
            case "INFO": return Self.keyspace
            case "SCAN": return .array([.bulk("0"), .array([.bulk("h1"), .bulk("h2")])])
            case "PEXPIRETIME": return .error("ERR unknown command 'PEXPIRETIME', with args beginning with: '\(c[1])' ")
            case "PTTL": return .int(c[1] == "h1" ? 5000 : -1)
            case "TYPE": return .simple("hash")
            case "HLEN": return .int(1)
            case "MEMORY": return .int(100)
            case "DUMP": return .error("NOPERM User checker has no permissions to run the 'dump' command")
            case "HSCAN": return .array([.bulk("0"), .array([.bulk("f"), .bulk("v-" + c[1])])])
            default: return .error("ERR unexpected \(c[0])")
            }
        }
        defer { server.stop() }
        let s = try await side(server, options())
        defer { Task { await s.close() } }
        // Known from the probe at the start, before any key is read.
        #expect(s.readPlan == "values by type reads: DUMP refused (NOPERM); expiry by PTTL: PEXPIRETIME unknown (renamed or disabled)")
        #expect(server.received("TYPE").isEmpty)
        let (tables, _) = try await s.collect(filter: KeyFilter())
        #expect(tables.map(\.count).reduce(0, +) == 2)
        #expect(s.readPlan == "values by type reads: DUMP refused (NOPERM); expiry by PTTL: PEXPIRETIME unknown (renamed or disabled)")
        let sent = (server.received("DUMP").count, server.received("PEXPIRETIME").count, server.received("MEMORY").count)
        let (again, _) = try await s.collect(filter: KeyFilter())
        #expect(again.map(\.count).reduce(0, +) == 2)
        // The second reading asks neither refused command, nor the size (no DUMP to bound).
        #expect(server.received("DUMP").count == sent.0 && server.received("PEXPIRETIME").count == sent.1)
        #expect(server.received("MEMORY").count == sent.2)
        #expect(server.received("HSCAN").count == 4)
    }

    /// A server that stops answering mid-check: the request is sent again on a new connection
    /// (its first try waits 2 s and a little), gets no answer either, and the check ends naming
    /// the server once it has been silent for --node-timeout. (6 s: on a machine loaded by the
    /// other suites the first try's timer fired up to 1.7 s late, past a 3 s timeout.)
    @Test func silentServerEndsTheCheck() async throws {
        let server = try FakeServer(script: Self.strings { c in c[0] == "SCAN" ? .silence : nil })
        defer { server.stop() }
        let s = try await side(server, options { $0.nodeTimeout = .seconds(6) })
        defer { Task { await s.close() } }
        let start = ContinuousClock.now
        do {
            _ = try await s.collect(filter: KeyFilter())
            Issue.record("a silent server was read")
        } catch let e as SlotdiffError {
            #expect(
                e.code == .connection && e.description.contains("127.0.0.1:\(server.port)")
                    && e.description.contains("no reply for 6") && e.description.contains("s (the request was sent again on a new connection once)")
                    && e.description.contains("--node-timeout 6 s"), "\(e)")
        }
        // Bounded by --node-timeout; a machine loaded by the other suites adds seconds.
        let took = ContinuousClock.now - start
        #expect(took >= .seconds(6) && took < .seconds(23), "\(took)")
        #expect(server.received("SCAN").count == 2)
    }

    /// One huge field among thousands of tiny ones: sized exactly (SAMPLES 0), read in chunks,
    /// never DUMPed; a hash over the element bound is not even sized.
    @Test func sizeBoundIsExact() async throws {
        let server = try FakeServer { c, _ in
            switch c[0].uppercased() {
            case "INFO": return Self.keyspace
            case "SCAN": return .array([.bulk("0"), .array([.bulk("lopsided"), .bulk("long")])])
            case "PEXPIRETIME": return .int(-1)
            case "TYPE": return .simple("hash")
            case "HLEN": return .int(c[1] == "lopsided" ? 5001 : 9000)
            case "MEMORY": return .int(c[2] == "lopsided" ? 400_000_000 : 1000)
            case "HSCAN": return .array([.bulk("0"), .array([.bulk("f"), .bulk("v")])])
            default: return .error("ERR unexpected \(c[0])")
            }
        }
        defer { server.stop() }
        let s = try await side(server, options())
        defer { Task { await s.close() } }
        let (tables, _) = try await s.collect(filter: KeyFilter())
        #expect(tables.map(\.count).reduce(0, +) == 2)
        #expect(server.received("DUMP").isEmpty)
        #expect(server.received("MEMORY").map { $0.joined(separator: " ") } == ["MEMORY USAGE lopsided SAMPLES 0"])
        #expect(Set(server.received("HSCAN").map { $0[1] }) == ["lopsided", "long"])
    }

    /// A big set whose scan returns an element twice (its table resized meanwhile): the scan
    /// gave more elements than SCARD, so the set is scanned again keeping each element's hash
    /// once, and its digest is that of the set without duplicates. A scan that returns each
    /// element once is taken as it is, keeping no hashes.
    @Test func scanDuplicatesAreCountedOnce() async throws {
        func server(pages: [String: (String, [String])]) throws -> FakeServer {
            try FakeServer { c, _ in
                switch c[0].uppercased() {
                case "INFO": return Self.keyspace
                case "SCAN": return .array([.bulk("0"), .array([.bulk("s")])])
                case "PEXPIRETIME": return .int(-1)
                case "TYPE": return .simple("set")
                case "SCARD": return .int(4)
                case "MEMORY": return .int(400_000_000)
                case "SSCAN":
                    let (next, members) = pages[c[2]]!
                    return .array([.bulk(next), .array(members.map { .bulk($0) })])
                default: return .error("ERR unexpected \(c[0])")
                }
            }
        }
        let twice = try server(pages: ["0": ("5", ["a", "b", "c"]), "5": ("0", ["c", "d"])])
        let once = try server(pages: ["0": ("5", ["a", "b"]), "5": ("0", ["c", "d"])])
        defer {
            twice.stop()
            once.stop()
        }
        var digests: [Hash128] = []
        for server in [twice, once] {
            let s = try await side(server, options())
            let (tables, _) = try await s.collect(filter: KeyFilter())
            await s.close()
            let t = try #require(tables.first { $0.count == 1 })
            digests.append(t.entry(0).digest)
        }
        let d = CanonicalDigester()
        d.begin(.set)
        for m in ["d", "b", "a", "c"] { Array(m.utf8).withUnsafeBytes { d.element($0) } }
        #expect(digests == [d.finish(), d.finish()])
        // One SSCAN first tries to read the set whole (it is small), then the chunked reads.
        #expect(twice.received("SSCAN").count == 5 && once.received("SSCAN").count == 3, "\(twice.received("SSCAN")) \(once.received("SSCAN"))")
        #expect(twice.received("SCARD").count == 1 && once.received("SCARD").count == 2)
    }

    /// A reply of another shape than the command's (a proxy or a module answering oddly) ends
    /// the check naming the command; it is never read as an empty or shorter value.
    @Test(arguments: [
        ("LRANGE", "list", Reply.simple("OK")), ("HSCAN", "hash", Reply.array([.bulk("0"), .array([.int(1), .bulk("v")])])),
        ("XPENDING", "stream", Reply.simple("OK"))
    ])
    func malformedChunkedReplyIsAnError(command: String, type: String, reply: Reply) async throws {
        let server = try FakeServer { c, _ in
            switch c[0].uppercased() {
            case "INFO": return Self.keyspace
            case "SCAN": return .array([.bulk("0"), .array([.bulk("k")])])
            case "PEXPIRETIME": return .int(-1)
            case "TYPE": return .simple(type)
            case "LLEN", "HLEN", "XLEN": return .int(100_000)  // over the element bound: read in chunks
            case "XRANGE": return .array([])
            case "XINFO":
                return c[1] == "STREAM"
                    ? .map([("last-generated-id", .bulk("0-0"))])
                    : .array([.map([("name", .bulk("g")), ("last-delivered-id", .bulk("0-0"))])])
            case command: return reply
            default: return .error("ERR unexpected \(c[0])")
            }
        }
        defer { server.stop() }
        let s = try await side(server, options())
        defer { Task { await s.close() } }
        do {
            _ = try await s.collect(filter: KeyFilter())
            Issue.record("\(command): a malformed reply was read as a value")
        } catch let e as SlotdiffError {
            #expect(e.code == .unexpectedReply && e.command == command, "\(e)")
        }
    }

    /// An empty stream (every entry deleted) is a key: XLEN 0 is not "gone".
    @Test func emptyStreamIsAKey() async throws {
        let server = try FakeServer { c, _ in
            switch c[0].uppercased() {
            case "INFO": return Self.keyspace
            case "SCAN": return .array([.bulk("0"), .array([.bulk("s")])])
            case "PEXPIRETIME": return .int(-1)
            case "TYPE": return .simple("stream")
            case "XLEN": return .int(0)
            case "MEMORY": return .int(600)
            case "DUMP": return .null  // deleted meanwhile: absent, as a null reply says
            default: return .error("ERR unexpected \(c[0])")
            }
        }
        defer { server.stop() }
        let s = try await side(server, options())
        defer { Task { await s.close() } }
        _ = try await s.collect(filter: KeyFilter())
        #expect(server.received("DUMP").count == 1)
    }

    /// The connection drops in the middle of the listing (a restart): the listing starts over
    /// from cursor 0 on the new connection, and every key is kept once.
    @Test func listingStartsOverAfterAReconnect() async throws {
        let dropped = NIOLockedBox(1)
        let server = try FakeServer(
            script: Self.strings { c in
                guard c[0] == "SCAN" else { return nil }
                if c[1] == "0" { return .array([.bulk("7"), .array([.bulk("a")])]) }
                if dropped.take() { return .hangUp }
                return .array([.bulk("0"), .array([.bulk("b")])])
            })
        defer { server.stop() }
        let s = try await side(server, options())
        defer { Task { await s.close() } }
        let (tables, _) = try await s.collect(filter: KeyFilter())
        #expect(tables.map(\.count).reduce(0, +) == 2)
        #expect(server.received("SCAN").filter { $0[1] == "0" }.count == 2, "\(server.received("SCAN"))")
    }

    /// A connection that keeps dropping mid-listing ends the check: a listing never finished
    /// is never trusted.
    @Test func listingThatNeverFinishesIsAnError() async throws {
        let calls = NIOLockedBox(0)
        let server = try FakeServer(
            script: Self.strings { c in
                guard c[0] == "SCAN" else { return nil }
                if c[1] == "0" { return .array([.bulk("7"), .array([.bulk("a")])]) }
                // Every other time: the retry on a new connection is answered, but too late.
                calls.update { $0 += 1 }
                return calls.value % 2 == 1 ? .hangUp : .array([.bulk("0"), .array([.bulk("b")])])
            })
        defer { server.stop() }
        let s = try await side(server, options { $0.reconnectAttempts = 10 })
        defer { Task { await s.close() } }
        do {
            _ = try await s.collect(filter: KeyFilter())
            Issue.record("a listing cut six times passed")
        } catch let e as SlotdiffError {
            #expect(e.description.contains("listed"), "\(e)")
        }
    }

    /// MOVED in the probe and in the middle of a chunked read: the key is read where it went;
    /// a MOVED without a host (`:PORT`, cluster-preferred-endpoint-type unknown-endpoint) is to
    /// the host that sent it.
    @Test func redirectionsAreFollowed() async throws {
        let there = try FakeServer(
            script: Self.strings { c in
                switch c[0] {
                case "TYPE": return c[1] == "h" ? .simple("hash") : nil
                case "HLEN": return .int(20_000)
                case "HSCAN": return .array([.bulk("0"), .array([.bulk("f"), .bulk("v")])])
                default: return nil
                }
            })
        defer { there.stop() }
        let moved = Reply.error("MOVED 866 127.0.0.1:\(there.port)")
        let here = try FakeServer { c, _ in
            switch c[0].uppercased() {
            case "INFO": return Self.keyspace
            case "SCAN": return .array([.bulk("0"), .array([.bulk("a"), .bulk("h")])])
            case "PEXPIRETIME": return c[1] == "a" ? moved : .int(-1)
            case "TYPE": return c[1] == "a" ? moved : .simple("hash")
            case "HLEN": return .int(20_000)
            case "HSCAN": return c[2] == "0" ? .array([.bulk("5"), .array([.bulk("g"), .bulk("w")])]) : .error("MOVED 866 :\(there.port)")
            default: return .error("ERR unexpected \(c[0])")
            }
        }
        defer { here.stop() }
        let s = try await side(here, options())
        defer { Task { await s.close() } }
        let (tables, _) = try await s.collect(filter: KeyFilter())
        #expect(tables.map(\.count).reduce(0, +) == 2)
        #expect(there.received("GETRANGE").map { $0[1] } == ["a"])
        // Scanned there twice: one field given for HLEN's 20,000 is read again with duplicates set apart.
        #expect(there.received("HSCAN").map { $0[1] } == ["h", "h"])
    }

    /// Before Redis 7.4 a cluster node is listed slot by slot; a slot that grew between
    /// COUNTKEYSINSLOT and GETKEYSINSLOT past what one reply may carry is listed by SCAN.
    @Test func slotThatGrowsIsListedBySCAN() async throws {
        let tag = (0...).lazy.map { "{t\($0)}" }.first { HashSlot.slot(of: Array($0.utf8)) == 5 }!
        let keys = (0..<30).map { "\(tag)k\($0)" }
        let server = try FakeServer(version: "7.0.15", mode: "cluster") { c, _ in
            switch c[0].uppercased() {
            case "CLUSTER" where c[1].uppercased() == "COUNTKEYSINSLOT": return .int(c[2] == "5" ? 2 : 0)
            case "CLUSTER" where c[1].uppercased() == "GETKEYSINSLOT":
                return .array(keys.prefix(Int(c[3])!).map { .bulk($0) })
            case "SCAN": return .array([.bulk("0"), .array((keys + ["other"]).map { .bulk($0) })])
            default: return .error("ERR unexpected \(c[0])")
            }
        }
        defer { server.stop() }
        let node = LiveNode(
            endpoint: RedisEndpoint(host: "127.0.0.1", port: server.port), options: options { $0.slotKeysLimit = 20 },
            limiter: nil, readOnly: false)
        try await node.connect()
        defer { Task { await node.close() } }
        let listed = NIOLockedBox<[String]>([])
        try await node.scan(db: nil, match: nil, slotUnits: [SlotRange(0, 1023)]) { batch, _ in
            listed.update { $0 += batch.map { String(decoding: $0, as: UTF8.self) } }
        }
        #expect(listed.value.sorted() == keys.sorted())
        #expect(server.received("CLUSTER").filter { $0[1] == "GETKEYSINSLOT" }.map { $0[3] } == ["18", "20"])
        #expect(server.received("SCAN").count == 1)
    }

    /// The second GETKEYSINSLOT of a grown slot answered with something other than a list:
    /// an error, not a slot without keys.
    @Test func malformedGetKeysInSlotIsAnError() async throws {
        let tag = (0...).lazy.map { "{t\($0)}" }.first { HashSlot.slot(of: Array($0.utf8)) == 5 }!
        let server = try FakeServer(version: "7.0.15", mode: "cluster") { c, _ in
            switch (c[0].uppercased(), c.count > 3 ? c[3] : "") {
            case ("CLUSTER", _) where c[1].uppercased() == "COUNTKEYSINSLOT": return .int(c[2] == "5" ? 2 : 0)
            case ("CLUSTER", "18"): return .array((0..<18).map { .bulk("\(tag)k\($0)") })  // grown: asked again
            case ("CLUSTER", _): return .simple("OK")
            default: return .error("ERR unexpected \(c[0])")
            }
        }
        defer { server.stop() }
        let node = LiveNode(
            endpoint: RedisEndpoint(host: "127.0.0.1", port: server.port), options: options { $0.slotKeysLimit = 20 },
            limiter: nil, readOnly: false)
        try await node.connect()
        defer { Task { await node.close() } }
        do {
            try await node.scan(db: nil, match: nil, slotUnits: [SlotRange(0, 1023)]) { _, _ in }
            Issue.record("a malformed GETKEYSINSLOT reply listed no keys")
        } catch let e as SlotdiffError {
            #expect(e.code == .unexpectedReply && e.command == "CLUSTER GETKEYSINSLOT", "\(e)")
        }
    }

    /// A node on Valkey 8 whose SCAN cursor turns out not to walk slot by slot is listed with
    /// a plain SCAN, before any key of the slot walk is handed over.
    @Test func unorderedSlotCursorFallsBackToScan() async throws {
        let low = (0...).lazy.map { "k\($0)" }.first { HashSlot.slot(of: Array($0.utf8)) < 100 }!
        let high = (0...).lazy.map { "k\($0)" }.first { (200...300).contains(HashSlot.slot(of: Array($0.utf8))) }!
        let server = try FakeServer(version: "8.1.1", mode: "cluster") { c, _ in
            guard c[0] == "SCAN" else { return .error("ERR unexpected \(c[0])") }
            // The walk from slot 200 answers a key of a slot before it: not slot-ordered.
            return c[1] == "0" ? .array([.bulk("0"), .array([.bulk(low), .bulk(high)])]) : .array([.bulk("0"), .array([.bulk(low)])])
        }
        defer { server.stop() }
        let node = LiveNode(endpoint: RedisEndpoint(host: "127.0.0.1", port: server.port), options: options(), limiter: nil, readOnly: false)
        try await node.connect()
        defer { Task { await node.close() } }
        #expect(node.hasSlotCursors)
        let listed = NIOLockedBox<[String]>([])
        try await node.scan(db: nil, match: nil, slotUnits: [SlotRange(200, 300)]) { batch, _ in
            listed.update { $0 += batch.map { String(decoding: $0, as: UTF8.self) } }
        }
        #expect(listed.value.contains(high) && listed.value.contains(low))
        #expect(server.received("SCAN").map { $0[1] } == ["200", "0"])
    }

    /// Without INFO, every database the server has is asked (SELECT until the index is out of
    /// range): keys only in db 20 of 32 are found; a refused DBSIZE there ends the check
    /// instead of listing nothing.
    @Test func databasesWithoutInfo() async throws {
        let refuseDbsize = NIOLockedBox(0)
        let selected = NIOLockedBox<[Int: Int]>([:])
        let server = try FakeServer(handlesSelect: false) { c, connection in
            switch c[0].uppercased() {
            case "INFO": return .error("NOPERM User checker has no permissions to run the 'info' command")
            case "SELECT":
                guard Int(c[1])! < 32 else { return .error("ERR DB index is out of range") }
                selected.update { $0[connection] = Int(c[1])! }
                return .ok
            case "DBSIZE":
                if refuseDbsize.value == 1 { return .error("NOPERM User checker has no permissions to run the 'dbsize' command") }
                return .int(selected.value[connection] == 20 ? 50 : 0)
            default: return .error("ERR unexpected \(c[0])")
            }
        }
        defer { server.stop() }
        let node = LiveNode(endpoint: RedisEndpoint(host: "127.0.0.1", port: server.port), options: options(), limiter: nil, readOnly: false)
        try await node.connect()
        defer { Task { await node.close() } }
        #expect(try await node.databases() == [20])
        // Sixteen databases a round trip: the third round meets the end of the range.
        #expect(server.received("SELECT").count == 48)
        refuseDbsize.update { $0 = 1 }
        do {
            _ = try await node.databases()
            Issue.record("a refused DBSIZE listed no database")
        } catch let e as SlotdiffError {
            #expect(e.description.contains("DBSIZE refused") && e.description.contains("+dbsize"), "\(e)")
        }
    }

    /// The rate limit spreads commands at the given rate, on virtual time: 3000 commands at
    /// 1000 a second, the first 1000 from a full bucket, wait 2 s in all.
    @Test func rateLimiterKeepsTheRate() async throws {
        let start = ContinuousClock.now
        let elapsed = NIOLockedBox<Duration>(.zero)
        let limiter = RateLimiter(qps: 1000, now: { start + elapsed.value }, sleep: { d in elapsed.update { $0 += d } })
        for _ in 0..<6 { await limiter.acquire(500) }
        #expect(abs((elapsed.value - .seconds(2)) / .milliseconds(1)) < 5, "\(elapsed.value)")
        // A batch bigger than a second's worth waits for a full bucket, then goes.
        await limiter.acquire(5000)
        #expect(elapsed.value <= .seconds(3) + .milliseconds(5), "\(elapsed.value)")
    }

    /// `--max-latency`: a server whose PING takes 200 ms (over a 50 ms limit) slows the side's
    /// rate down from no limit to a finite one; answering at once again, the rate grows back
    /// until there is no limit. The summary's line says what was held.
    @Test func latencyGovernorSlowsDownAndRecovers() async throws {
        let slow = NIOLockedBox(true)
        let server = try FakeServer { command, _ in
            guard command.first?.uppercased() == "PING" else { return .error("ERR unknown command") }
            if slow.value { usleep(200_000) }
            return .simple("PONG")
        }
        let limiter = RateLimiter(qps: nil)
        // Limits far from a loaded machine's own delays: a test run starts many processes.
        let governor = LatencyGovernor(limit: .milliseconds(50), limiter: limiter)
        // Traffic through the limiter, as a check's batches would go.
        let traffic = Task {
            while !Task.isCancelled {
                await limiter.acquire(20)
                try? await Task.sleep(for: .milliseconds(1))
            }
        }
        defer { traffic.cancel() }
        governor.start([(RedisEndpoint(host: "127.0.0.1", port: server.port), RedisConnectionOptions())], logger: Logger(label: "test"))
        defer { governor.stop() }
        var slowed = false
        for _ in 0..<100 where !slowed {
            try await Task.sleep(for: .milliseconds(100))
            slowed = limiter.rate.isFinite
        }
        #expect(slowed, "the rate stayed unlimited: \(governor.report)")
        slow.update { $0 = false }
        var recovered = false
        for _ in 0..<300 where !recovered {
            try await Task.sleep(for: .milliseconds(100))
            recovered = !limiter.rate.isFinite
        }
        #expect(recovered, "still limited to \(limiter.rate)/s: \(governor.report)")
        #expect(governor.report.contains("limit 50.0 ms") && governor.report.contains("slowed down"), "\(governor.report)")
    }
}

/// A value shared with a scripted server's event loop.
final class NIOLockedBox<T: Sendable>: Sendable {
    private let box: NIOLockedValueBox<T>
    init(_ value: T) { box = NIOLockedValueBox(value) }
    var value: T { box.withLockedValue { $0 } }
    func update(_ body: (inout T) -> Void) { box.withLockedValue { body(&$0) } }
}

extension NIOLockedBox where T == Int {
    /// True (and one fewer left) while the count is above zero.
    func take() -> Bool {
        box.withLockedValue { n in
            if n > 0 { n -= 1; return true }
            return false
        }
    }
}
