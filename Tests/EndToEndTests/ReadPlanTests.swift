import Foundation
import SlotdiffCore
import TestSupport
import Testing

/// A node that refuses DUMP or PEXPIRETIME (ACL, or renamed away) is read another way: values
/// by per-type commands into the same canonical digest, expiries by PTTL and this machine's
/// clock. Every value gets the same digest whatever plan read it, a real difference is still
/// found, and the summary says how each side was read.
@Suite(.serialized, .enabled(if: TestServers.available, "server binaries missing: run Scripts/setup"))
struct ReadPlanTests {
    let dir = TestPaths.temporaryDirectory()
    func path(_ n: String) -> String { dir.appendingPathComponent(n).path }

    typealias Outcome = CheckRun

    func compare(_ a: String, _ b: String, _ extra: [String] = []) throws -> Outcome { try CheckRun.compare(a, b, extra, in: dir) }

    /// Every type in every encoding a server picks for it: integer and raw strings, a string
    /// longer than one read, lists, sets (intset, listpack, hashtable), sorted sets with float,
    /// integer and infinite scores (listpack and skiplist), hashes (listpack and hashtable),
    /// streams with consumer groups and pending entries, and keys with expiries.
    static let fillScript = """
        redis.call('SET', 'str:int', '12345')
        redis.call('SET', 'str:neg', '-7')
        redis.call('SET', 'str:raw', 'hello world')
        redis.call('SET', 'str:empty', '')
        redis.call('SET', 'str:long', string.rep('abcdefghij', 20000))
        redis.call('PEXPIREAT', 'str:raw', 4200000000000)
        redis.call('RPUSH', 'list:small', 'a', 'b', '3', 'a')
        for i = 1, 600 do redis.call('RPUSH', 'list:big', 'element-' .. i) end
        redis.call('SADD', 'set:int', 1, 2, 3, -40, 1000000)
        redis.call('SADD', 'set:str', 'x', 'y', 'z')
        for i = 1, 700 do redis.call('SADD', 'set:big', 'member-' .. i, i) end
        redis.call('ZADD', 'zset:small', 1.5, 'a', 3, 'b', '+inf', 'c', '-inf', 'd', 0, 'e', -2.25, 'f', 0.1, 'g')
        for i = 1, 300 do redis.call('ZADD', 'zset:big', i / 7, 'm' .. i) end
        redis.call('ZADD', 'zset:big', '+inf', 'top', '-inf', 'bottom')
        redis.call('HSET', 'hash:small', 'a', '1', 'b', 'two', 'c', '')
        for i = 1, 800 do redis.call('HSET', 'hash:big', 'field-' .. i, string.rep('v', i % 90)) end
        redis.call('PEXPIREAT', 'hash:big', 4200000000000)
        for i = 1, 30 do redis.call('XADD', 'stream:g', (1700000000000 + i) .. '-' .. (i % 3), 'n', i, 'text', 'entry-' .. i) end
        redis.call('XGROUP', 'CREATE', 'stream:g', 'g1', '0')
        redis.call('XGROUP', 'CREATE', 'stream:g', 'g2', '$')
        redis.call('XADD', 'stream:plain', '5-1', 'a', 'b')
        redis.call('XADD', 'stream:plain', '5-2', 'c', 'd')
        redis.call('XDEL', 'stream:plain', '5-2')
        for i = 1, 40 do redis.call('SET', 'plain:' .. i, i) end
        return 1
        """

    static func fill(_ port: Int, fieldTTLs: Bool) throws {
        try TestServers.cli(port: port, ["EVAL", fillScript, "0"])
        // Pending entries for two consumers of g1.
        try TestServers.cli(port: port, ["XREADGROUP", "GROUP", "g1", "alice", "COUNT", "4", "STREAMS", "stream:g", ">"])
        try TestServers.cli(port: port, ["XREADGROUP", "GROUP", "g1", "bob", "COUNT", "3", "STREAMS", "stream:g", ">"])
        try TestServers.cli(port: port, ["XACK", "stream:g", "g1", try firstStreamID(port)])
        if fieldTTLs {
            try TestServers.cli(port: port, ["HSET", "hash:ttl", "f1", "v1", "f2", "v2", "f3", "v3"])
            try TestServers.cli(port: port, ["HPEXPIREAT", "hash:ttl", "4200000000000", "FIELDS", "2", "f1", "f3"])
            try TestServers.cli(port: port, ["HPEXPIREAT", "hash:big", "4100000000000", "FIELDS", "1", "field-7"])
        }
    }

    static func firstStreamID(_ port: Int) throws -> String {
        let out = try TestServers.cli(port: port, ["XRANGE", "stream:g", "-", "+", "COUNT", "1"])
        return out.split(whereSeparator: \.isNewline).first.map(String.init) ?? "0-0"
    }

    static let base = ["~*", "&*", "-@all", "+@read", "+@connection", "+info"]

    /// The same server read by the default user and by users refused DUMP, DUMP and MEMORY
    /// (no value's size is known), PEXPIRETIME, or DUMP and PEXPIRETIME: a MATCH, with the
    /// plan named in the summary and one warning per node.
    @Test(arguments: [TestServers.Kind.redis7, .valkey8, .redis8])
    func everyTypeMatchesWhicheverPlanReadsIt(_ kind: TestServers.Kind) async throws {
        try await offPool { [self] in
            let port = 17610
            try TestServers.start("rp-one", kind, port: port)
            defer { TestServers.stop("rp-one") }
            try Self.fill(port, fieldTTLs: kind == .redis8)
            let users: [(String, [String], String?, String?)] = [
                ("nodump", ["-dump"], "DUMP refused (NOPERM)", nil),
                ("noexpiry", ["-pexpiretime"], nil, "PEXPIRETIME refused (NOPERM)"),
                ("nodumpnomemory", ["-dump", "-memory"], "MEMORY USAGE refused (NOPERM)", nil),
                ("neither", ["-dump", "-pexpiretime"], "DUMP refused (NOPERM)", "PEXPIRETIME refused (NOPERM)")
            ]
            for (user, refused, values, expiry) in users {
                try TestServers.cli(port: port, ["ACL", "SETUSER", user, "reset", "on", ">pw"] + Self.base + refused)
                let plain = "redis://127.0.0.1:\(port)", restricted = "redis://\(user):pw@127.0.0.1:\(port)"
                for (a, b, side) in [(plain, restricted, "target"), (restricted, plain, "source")] {
                    let o = try compare(a, b, ["--big-key-threshold", "4096"])
                    #expect(o.run.status == 0, "\(kind) \(user) on the \(side): \(o.run.status) \(o.kindsByKey) \(o.run.stderr)")
                    #expect(o.keys("source") == o.keys("target") && (o.keys("source") ?? 0) > 50)
                    let read = o.read(side) ?? ""
                    if let values { #expect(read.contains("values by type reads: \(values)"), "\(read)") }
                    if let expiry { #expect(read.contains("expiry by PTTL: \(expiry)"), "\(read)") }
                    #expect(o.read(side == "source" ? "target" : "source") == nil)
                }
                // Told once per node, not per key, naming the node.
                let o = try compare(plain, restricted, ["--log-level", "warning"])
                if let values {
                    let told = o.run.stderr.components(separatedBy: values).count - 1
                    #expect(told == 1 && o.run.stderr.contains("endpoint=redis://\(user)@127.0.0.1:\(port)"), "\(o.run.stderr)")
                }
                if expiry != nil { #expect(o.run.stderr.components(separatedBy: "PEXPIRETIME refused (NOPERM)").count - 1 == 1, "\(o.run.stderr)") }
            }
        }
    }

    /// Two servers (Redis 7.0 and Valkey 8.1) with the same data but for a few differences of
    /// every kind, one side read without DUMP and PEXPIRETIME: exactly those differences.
    @Test func differencesAreFoundByTypeReads() async throws {
        try await offPool { [self] in
            try TestServers.start("rp-src", .redis7, port: 17611)
            try TestServers.start("rp-dst", .valkey8, port: 17612)
            defer { TestServers.stop("rp-src"); TestServers.stop("rp-dst") }
            for port in [17611, 17612] {
                try Self.fill(port, fieldTTLs: false)
                try TestServers.cli(port: port, ["ACL", "SETUSER", "checker", "reset", "on", ">pw"] + Self.base + ["-dump", "-pexpiretime"])
            }
            let changes: [[String]] = [
                ["LSET", "list:big", "300", "other"],
                ["ZADD", "zset:small", "1.25", "a"],
                ["HSET", "hash:big", "field-9", "changed"],
                ["SREM", "set:int", "-40"],
                ["SETRANGE", "str:long", "150000", "Z"],
                ["XREADGROUP", "GROUP", "g1", "carol", "COUNT", "1", "STREAMS", "stream:g", ">"],
                ["PEXPIREAT", "str:int", "4100000000000"],
                ["DEL", "plain:3"],
                ["SET", "plain:new", "1"]
            ]
            for c in changes { try TestServers.cli(port: 17612, c) }
            let expected = [
                "extra plain:new", "missing plain:3", "ttl str:int", "value hash:big", "value list:big", "value set:int",
                "value str:long", "value stream:g", "value zset:small"
            ]
            for (a, b) in [
                ("redis://checker:pw@127.0.0.1:17611", "redis://127.0.0.1:17612"),
                ("redis://127.0.0.1:17611", "redis://checker:pw@127.0.0.1:17612"),
                ("redis://checker:pw@127.0.0.1:17611", "redis://checker:pw@127.0.0.1:17612")
            ] {
                let o = try compare(a, b, ["--big-key-threshold", "4096"])
                #expect(o.run.status == 1 && o.kindsByKey == expected, "\(a) \(b): \(o.run.status) \(o.kindsByKey) \(o.run.stderr)")
            }
        }
    }

    /// A cluster whose nodes differ: two refuse DUMP to the user, one allows it. Each node
    /// keeps its own plan; the summary names the nodes that fell back; the check against a
    /// standalone server with the same data is exact, before and after a change.
    @Test func clusterNodesFallBackEachOnItsOwn() async throws {
        try await offPool { [self] in
            try TestServers.cluster("rp-cl", .valkey8, base: 17615, n: 3)
            try TestServers.start("rp-alone", .valkey8, port: 17618)
            defer { TestServers.stop("rp-cl"); TestServers.stop("rp-alone") }
            let fill = "for i = 1, 40 do redis.call('HSET', KEYS[1] .. i, 'f', i) redis.call('RPUSH', KEYS[2] .. i, 'a', i) end return 1"
            // One hash tag per script keeps it on one node; the tags spread over all three.
            for tag in ["{a}", "{b}", "{c}", "{d}", "{e}", "{f}"] {
                try TestServers.cli(port: 17615, ["EVAL", fill, "2", "\(tag)h:", "\(tag)l:"], cluster: true)
                try TestServers.cli(port: 17618, ["EVAL", fill, "2", "\(tag)h:", "\(tag)l:"])
            }
            let grants = Self.base + ["+cluster|shards", "+cluster|slots", "+cluster|nodes"]
            for port in 17615...17617 {
                try TestServers.cli(port: port, ["ACL", "SETUSER", "checker", "reset", "on", ">pw"] + grants + (port == 17617 ? [] : ["-dump"]))
            }
            let alone = "redis://127.0.0.1:17618", cluster = "redis://checker:pw@127.0.0.1:17615"
            let o = try compare(alone, cluster)
            #expect(o.run.status == 0 && o.keys("target") == 480, "\(o.run.status) \(o.kindsByKey) \(o.run.stderr)")
            let parts = Set((o.read("target") ?? "").components(separatedBy: "; "))
            #expect(
                parts == ["127.0.0.1:17615: values by type reads: DUMP refused (NOPERM)", "127.0.0.1:17616: values by type reads: DUMP refused (NOPERM)"],
                "\(parts)")
            // {a} lives on the node that allows DUMP, {b} on one that does not.
            try TestServers.cli(port: 17615, ["HSET", "{a}h:3", "f", "other"], cluster: true)
            try TestServers.cli(port: 17615, ["RPUSH", "{b}l:9", "more"], cluster: true)
            let d = try compare(alone, cluster)
            #expect(d.run.status == 1 && d.kindsByKey == ["value {a}h:3", "value {b}l:9"], "\(d.kindsByKey) \(d.run.stderr)")
        }
    }

    /// DUMP and PEXPIRETIME renamed away on the server (rename-command): read the other way,
    /// and the summary says the commands are unknown there.
    @Test func renamedCommandsAreReadAnotherWay() async throws {
        try await offPool { [self] in
            try TestServers.start("rp-plain", .valkey8, port: 17613)
            try TestServers.start(
                "rp-renamed", .valkey8, port: 17614,
                args: ["--rename-command", "DUMP", "DUMP_4f1c", "--rename-command", "PEXPIRETIME", "PEXPIRETIME_4f1c"])
            defer { TestServers.stop("rp-plain"); TestServers.stop("rp-renamed") }
            for port in [17613, 17614] { try Self.fill(port, fieldTTLs: false) }
            let o = try compare("redis://127.0.0.1:17613", "redis://127.0.0.1:17614")
            #expect(o.run.status == 0, "\(o.run.status) \(o.kindsByKey) \(o.run.stderr)")
            #expect(
                o.read("target") == "values by type reads: DUMP unknown (renamed or disabled); expiry by PTTL: PEXPIRETIME unknown (renamed or disabled)",
                "\(String(describing: o.read("target")))")
            try TestServers.cli(port: 17614, ["HSET", "hash:small", "b", "three"])
            let d = try compare("redis://127.0.0.1:17613", "redis://127.0.0.1:17614")
            #expect(d.run.status == 1 && d.kindsByKey == ["value hash:small"], "\(d.kindsByKey) \(d.run.stderr)")
            // The table says it too.
            let table = try run(
                TestPaths.slotdiffBinary,
                [
                    "compare", "redis://127.0.0.1:17613", "redis://127.0.0.1:17614",
                    "--out", path("rp-table.jsonl.zst"), "--round-delay", "50ms"
                ], timeout: 300)
            #expect(table.stdout.contains("target read") && table.stdout.contains("DUMP unknown (renamed or disabled)"), "\(table.stdout)")
        }
    }
}
