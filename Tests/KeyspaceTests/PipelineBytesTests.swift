import Foundation
import RESP
import SlotdiffCore
import TestSupport
import Testing

@testable import Keyspace

/// The values of one batch are asked for `pipelineBytes` at a time: a batch of big strings and
/// hashes goes in several pipelines, and reads to the same digests as in one.
@Suite(.serialized, .enabled(if: TestServers.available, "server binaries missing: run Scripts/setup"))
struct PipelineBytesTests {
    @Test func groupsStayUnderTheBudget() {
        #expect(LiveNode.groups([], budget: 10).isEmpty)
        #expect(LiveNode.groups([(0, 4), (1, 4), (2, 4), (3, 1)], budget: 10) == [[0, 1], [2, 3]])
        // One item over the budget is a group of its own, in order.
        #expect(LiveNode.groups([(5, 3), (6, 50), (7, 3)], budget: 10) == [[5], [6], [7]])
    }

    /// A size bound of 0 (only the library allows it) still reads strings whole: the first
    /// GETRANGE then returns one byte, which is not taken for the whole string.
    @Test func zeroBoundReadsWholeStrings() async throws {
        try await offPool {
            try TestServers.start("pb-zero", .valkey8, port: 17764)
            for (k, v) in [("a", "xy"), ("b", "xz"), ("c", "x"), ("e", "")] { try TestServers.cli(port: 17764, ["SET", k, v]) }
        }
        defer { TestServers.stop("pb-zero") }
        func read(bound: Int) async throws -> [String: Hash128] {
            var o = LiveOptions()
            o.bigKeyThreshold = bound
            return try await Self.digests(port: 17764, o)
        }
        let whole = try await read(bound: 4 << 20)
        #expect(whole.count == 4 && Set(whole.values).count == 4)
        #expect(try await read(bound: 0) == whole)
    }

    @Test func smallBudgetReadsTheSameDigests() async throws {
        try await offPool {
            try TestServers.start("pb-src", .valkey8, port: 17763)
            let python = TestPaths.root.appendingPathComponent(".venv/bin/python").path
            let fill = """
                import os, redis
                r = redis.Redis(port=17763)
                for i in range(40):
                    r.set(f"s:{i}", os.urandom(300_000))
                    r.hset(f"h:{i}", mapping={f"f{j}": os.urandom(500) for j in range(200)})
                    r.set(f"small:{i}", i)
                for i in range(2):
                    r.set(f"huge:{i}", os.urandom(5_000_000))
                """
            let f = try run(python, ["-c", fill], timeout: 120)
            try #require(f.status == 0, "\(f.stderr)")
        }
        defer { TestServers.stop("pb-src") }

        func read(budget: Int) async throws -> [String: Hash128] {
            var o = LiveOptions()
            o.workers = 1
            o.pipelineBytes = budget
            return try await Self.digests(port: 17763, o)
        }
        let dumps = { try await offPool { try TestServers.calls(port: 17763, "dump") } }
        let getranges = { try await offPool { try TestServers.calls(port: 17763, "getrange") } }
        let before = try await dumps()
        let g0 = try await getranges()
        let whole = try await read(budget: 1 << 30)
        let oneBatch = try await dumps() - before
        let g1 = try await getranges()
        let split = try await read(budget: 1 << 20)
        #expect(whole.count == 122 && whole == split)
        // Under 1 MB, a string's first read is 256 KiB: each longer one (40 of 300 KB, 2 of
        // 5 MB) is read once more, up to the 4 MB bound, before any piecewise read.
        #expect(try await getranges() - g1 == (g1 - g0) + 42)
        // The same DUMPs either way (the hashes', and the read-plan probe's), only in more pipelines.
        #expect(try await dumps() - before == 2 * oneBatch && oneBatch == 41)
    }

    /// Every key of the server on `port`, read with `options`, and its digest.
    static func digests(port: Int, _ options: LiveOptions) async throws -> [String: Hash128] {
        let s = try await LiveSide.open(endpoint: RedisEndpoint(host: "127.0.0.1", port: port), options: options)
        defer { Task { await s.close() } }
        let (tables, _) = try await s.collect(filter: KeyFilter())
        var digests: [String: Hash128] = [:]
        for t in tables { for i in 0..<t.count { digests[String(decoding: t.key(i), as: UTF8.self)] = t.entry(i).digest } }
        return digests
    }
}
