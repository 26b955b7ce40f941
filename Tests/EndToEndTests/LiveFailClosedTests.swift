import Foundation
import SlotdiffCore
import TestSupport
import Testing

/// A MATCH must be true: wherever a key could go unseen (a refused or renamed command, a
/// server restarted mid-listing, databases a side cannot see, a filter that selects nothing),
/// the check gives the exact answer or ends with exit 2 — never exit 0 with a difference missed.
/// The property checked wherever nothing writes: the keys a side lists equal what the server
/// holds (DBSIZE).
@Suite(.serialized, .enabled(if: TestServers.available, "server binaries missing: run Scripts/setup"))
struct FailClosedTests {
    let dir = TestPaths.temporaryDirectory()
    func path(_ n: String) -> String { dir.appendingPathComponent(n).path }

    typealias Outcome = CheckRun

    func compare(_ a: String, _ b: String, _ extra: [String] = [], env: [String: String]? = nil, timeout: TimeInterval = 300) throws -> Outcome {
        try CheckRun.compare(a, b, extra, in: dir, env: env, timeout: timeout)
    }

    static func dbsize(_ port: Int, db: Int = 0) throws -> Int {
        Int(try TestServers.cli(port: port, ["-n", "\(db)", "DBSIZE"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// Writes the same 300 keys (strings, hashes, lists, sets, sorted sets, some with expiries)
    /// to both servers; the target then lacks one string and holds another changed.
    func fill(_ source: Int, _ target: Int) throws {
        let script = """
            for i = 1, 100 do
              redis.call('SET', 's:' .. i, 'value-' .. i)
              redis.call('HSET', 'h:' .. i, 'a', i, 'b', 'text-' .. i)
              if i % 4 == 0 then redis.call('RPUSH', 'l:' .. i, 'x', 'y', i) end
              if i % 4 == 1 then redis.call('SADD', 'set:' .. i, 'm1', 'm2', i) end
              if i % 4 == 2 then redis.call('ZADD', 'z:' .. i, 1.5, 'a', i, 'b') end
              if i % 4 == 3 then redis.call('HSET', 'h2:' .. i, 'f', i) end
              if i % 10 == 0 then redis.call('PEXPIREAT', 's:' .. i, 4200000000000) end
            end
            return 1
            """
        for port in [source, target] { try TestServers.cli(port: port, ["EVAL", script, "0"]) }
        try TestServers.cli(port: target, ["DEL", "s:7"])
        try TestServers.cli(port: target, ["SET", "s:8", "changed"])
    }

    static let expectedDrift = ["missing 0 s:7", "value 0 s:8"]

    /// Each read the check relies on, refused to the checking user on one side (ACL), or
    /// renamed away: the exact answer (where another allowed read gives it) or exit 2 naming
    /// the command — never a pass.
    @Test func refusedCommandsNeverPass() async throws {
        try await offPool { [self] in
            try TestServers.start("fc-src", .redis7, port: 17501)
            try TestServers.start("fc-dst", .valkey8, port: 17502)
            defer { TestServers.stop("fc-src"); TestServers.stop("fc-dst") }
            try fill(17501, 17502)
            let base = ["~*", "&*", "-@all", "+@read", "+@connection", "+info"]
            // (what is refused, extra compare options, what the user may do, exact answer expected, words the error must hold)
            let cases: [(String, [String], [String], Bool, [String])] = [
                ("nothing", [], base, true, []),
                ("TYPE", [], base + ["-type"], false, ["TYPE", "+type"]),
                ("GETRANGE", [], base + ["-getrange"], false, ["GETRANGE", "+getrange"]),
                ("STRLEN", ["--mode", "length"], base + ["-strlen"], false, ["STRLEN", "+strlen"]),
                ("HLEN", [], base + ["-hlen"], false, ["HLEN", "+hlen"]),
                // Read another way (PTTL and the clock; per-type reads): see ReadPlanTests.
                ("PEXPIRETIME", [], base + ["-pexpiretime"], true, []),
                ("DUMP", [], base + ["-dump"], true, []),
                ("DUMP and MEMORY", [], base + ["-dump", "-memory"], true, []),
                // Without MEMORY every hash is read by HSCAN: refused, the size of none is known,
                // so DUMP (allowed) is never sent in its place.
                ("MEMORY and HSCAN", [], base + ["-memory", "-hscan"], false, ["HSCAN", "+hscan"]),
                ("MEMORY", [], base + ["-memory"], true, []),
                ("SCAN", [], base + ["-scan"], false, ["SCAN", "+scan"]),
                ("INFO", [], base + ["-info"], true, []),
                ("INFO and DBSIZE", [], base + ["-info", "-dbsize"], false, ["DBSIZE"]),
                ("SELECT", [], base + ["-select"], true, []),
                ("INFO and SELECT", [], base + ["-info", "-select"], false, ["SELECT"])
            ]
            for (what, extra, grants, exact, words) in cases {
                for (side, port) in [("source", 17501), ("target", 17502)] {
                    try TestServers.cli(port: port, ["ACL", "SETUSER", "checker", "reset", "on", ">pw"] + grants)
                    let url = "redis://checker:pw@127.0.0.1:\(port)"
                    let a = side == "source" ? url : "redis://127.0.0.1:17501", b = side == "target" ? url : "redis://127.0.0.1:17502"
                    let o = try compare(a, b, extra)
                    #expect(o.run.status != 0, "\(what) refused on the \(side): exit 0")
                    if exact {
                        #expect(o.run.status == 1 && o.kinds == Self.expectedDrift, "\(what) on the \(side): \(o.run.status) \(o.kinds) \(o.run.stderr)")
                        let held = (try Self.dbsize(17501), try Self.dbsize(17502))
                        #expect(
                            o.sourceKeys == held.0 && o.targetKeys == held.1,
                            "\(what) on the \(side): keys \(String(describing: o.sourceKeys)) / \(String(describing: o.targetKeys))")
                    } else {
                        #expect(o.run.status == 2, "\(what) refused on the \(side): status \(o.run.status) \(o.kinds)")
                        for w in words { #expect(o.run.stderr.contains(w), "\(what) on the \(side): \(o.run.stderr)") }
                        #expect(o.run.stderr.contains("127.0.0.1:\(port)"), "\(o.run.stderr)")
                        #expect(!o.run.stderr.contains(">pw") && !o.run.stderr.contains(":pw@"))
                    }
                }
                for port in [17501, 17502] { try TestServers.cli(port: port, ["ACL", "DELUSER", "checker"]) }
            }
            // A user that may not read MEMORY is read in chunks: exact, with a warning that names
            // the endpoint; logged at every level, the password never appears.
            try TestServers.cli(port: 17502, ["ACL", "SETUSER", "checker", "reset", "on", ">s3cret-pw"] + base + ["-memory"])
            let o = try compare("redis://127.0.0.1:17501", "redis://checker:s3cret-pw@127.0.0.1:17502", ["--log-level", "trace"])
            #expect(o.run.status == 1 && o.kinds == Self.expectedDrift)
            #expect(
                o.run.stderr.contains("warning: MEMORY USAGE refused") && o.run.stderr.contains("endpoint=redis://checker@127.0.0.1:17502"),
                "\(o.run.stderr)")
            #expect(!o.run.stderr.contains("s3cret-pw") && !o.run.stdout.contains("s3cret-pw"))
            let quiet = try compare("redis://127.0.0.1:17501", "redis://checker:s3cret-pw@127.0.0.1:17502", ["--log-level", "error"])
            #expect(!quiet.run.stderr.contains("MEMORY"), "\(quiet.run.stderr)")
        }
    }

    /// TYPE renamed away (rename-command), as hardened servers do: exit 2 naming it.
    @Test func renamedCommandIsAnError() async throws {
        try await offPool { [self] in
            try TestServers.start("fc-ren-src", .redis7, port: 17511)
            try TestServers.start("fc-ren-dst", .redis7, port: 17512, args: ["--rename-command", "TYPE", ""])
            defer { TestServers.stop("fc-ren-src"); TestServers.stop("fc-ren-dst") }
            try fill(17511, 17512)
            let o = try compare("redis://127.0.0.1:17511", "redis://127.0.0.1:17512")
            #expect(o.run.status == 2, "\(o.run.status) \(o.kinds)")
            #expect(o.run.stderr.contains("TYPE") && o.run.stderr.contains("renamed"), "\(o.run.stderr)")
        }
    }

    /// Databases: every database the server has is looked at, also without INFO (databases 32,
    /// keys only in db 20); a source with keys in db 0 and db 3 against a cluster is exit 2
    /// naming the databases, and --db 0 then checks exactly; --db 3 or /3 against a cluster is
    /// a usage error; a dump file's db-3 keys are not "found" in the cluster's db 0 by a re-check.
    @Test func databasesFailClosed() async throws {
        try await offPool { [self] in
            try TestServers.start("fc-db-src", .redis7, port: 17521, args: ["--databases", "32"])
            try TestServers.start("fc-db-dst", .redis7, port: 17522, args: ["--databases", "32"])
            try TestServers.cluster("fc-db-cl", .valkey8, base: 17530, n: 3)
            defer { TestServers.stop("fc-db-src"); TestServers.stop("fc-db-dst"); TestServers.stop("fc-db-cl") }
            let fillDb = "for i = 1, tonumber(ARGV[1]) do redis.call('SET', ARGV[2] .. i, i) end return 1"
            for port in [17521, 17522] { try TestServers.cli(port: port, ["EVAL", fillDb, "0", "100", "k:"]) }
            try TestServers.cli(port: 17521, ["-n", "20", "EVAL", fillDb, "0", "50", "only-in-20:"])
            try TestServers.cli(port: 17521, ["ACL", "SETUSER", "checker", "on", ">pw", "~*", "&*", "-@all", "+@read", "+@connection", "-info"])
            let o = try compare("redis://checker:pw@127.0.0.1:17521", "redis://127.0.0.1:17522")
            #expect(o.run.status == 1, "\(o.run.stderr)")
            #expect(o.diffs.count == 50 && o.diffs.allSatisfy { $0.kind == .missing && $0.db == 20 }, "\(o.kinds.prefix(5))")
            #expect(o.sourceKeys == 150 && o.targetKeys == 100)

            // Standalone with db 0 and db 3 against a cluster holding db 0's keys.
            try TestServers.cli(port: 17521, ["-n", "3", "EVAL", fillDb, "0", "100", "k:"])
            try TestServers.cli(port: 17521, ["-n", "20", "FLUSHDB"])
            for i in 1...100 { try TestServers.cli(port: 17530, ["SET", "k:\(i)", "\(i)"], cluster: true) }
            let mixed = try compare("redis://127.0.0.1:17521", "redis://127.0.0.1:17530")
            #expect(mixed.run.status == 2, "\(mixed.run.status) \(mixed.kinds.prefix(3))")
            #expect(mixed.run.stderr.contains("0, 3") && mixed.run.stderr.contains("--db"), "\(mixed.run.stderr)")
            let db0 = try compare("redis://127.0.0.1:17521", "redis://127.0.0.1:17530", ["--db", "0"])
            #expect(db0.run.status == 0, "\(db0.run.stderr)")
            #expect(db0.sourceKeys == 100 && db0.targetKeys == 100)
            let db3 = try compare("redis://127.0.0.1:17521", "redis://127.0.0.1:17530", ["--db", "3"])
            #expect(db3.run.status == 2 && db3.run.stderr.contains("only database 0"), "\(db3.run.stderr)")
            let url3 = try compare("redis://127.0.0.1:17521", "redis://127.0.0.1:17530/3")
            #expect(
                url3.run.status == 2 && (url3.run.stderr.contains("only database 0") || url3.run.stderr.contains("cluster mode")),
                "\(url3.run.stderr)")
            // A dump of that server against the cluster: db 3's keys are missing there, and the
            // re-check rounds do not "find" them in database 0.
            try TestServers.cli(port: 17521, ["SAVE"])
            let dump = TestPaths.root.appendingPathComponent(".servers/fc-db-src/dump.rdb").path
            let file = try compare(dump, "redis://127.0.0.1:17530")
            #expect(file.run.status == 1, "\(file.run.stderr)")
            #expect(file.diffs.count == 100 && file.diffs.allSatisfy { $0.kind == .missing && $0.db == 3 }, "\(file.kinds.prefix(3))")

            // --db-map 3=0: the source's database 3 compared with the cluster's database 0, live
            // and from the dump; differences are read again in database 3 on the source (were
            // they looked for in its database 0, which holds the cluster's values, they would clear).
            let mapped = try compare("redis://127.0.0.1:17521", "redis://127.0.0.1:17530", ["--db-map", "3=0"])
            #expect(mapped.run.status == 0, "\(mapped.run.stderr)")
            #expect(mapped.sourceKeys == 100 && mapped.targetKeys == 100)
            #expect(mapped.summary["database_map"] as? String == "3=0")
            let fromDump = try compare(dump, "redis://127.0.0.1:17530", ["--db-map", "3=0"])
            #expect(fromDump.run.status == 0 && fromDump.sourceKeys == 100, "\(fromDump.run.stderr)")
            try TestServers.cli(port: 17521, ["-n", "3", "SET", "k:7", "changed"])
            try TestServers.cli(port: 17521, ["-n", "3", "DEL", "k:8"])
            let drifted = try compare("redis://127.0.0.1:17521", "redis://127.0.0.1:17530", ["--db-map", "3=0"])
            #expect(drifted.run.status == 1, "\(drifted.run.stderr)")
            #expect(
                Set(drifted.diffs.map { "\($0.kind.rawValue) \($0.db) \($0.sourceDb ?? -1) \($0.displayKey)" }) == ["value 0 3 k:7", "extra 0 3 k:8"],
                "\(drifted.kinds)")
            // Explained from the source's database 3: read from its database 0 ("7"), the value
            // would not be what the check saw, and the line would say the key changed since.
            let explained = drifted.diffs.first { $0.kind == .value }.map { $0.jsonLine() } ?? ""
            #expect(explained.contains("\"detail\"") && explained.contains("changed") && !explained.contains("changed_since_check"), "\(explained)")
            // The reverse direction: the cluster's database 0 as the standalone side's database 3.
            let reverse = try compare("redis://127.0.0.1:17530", "redis://127.0.0.1:17521", ["--db-map", "0=3"])
            #expect(
                reverse.run.status == 1 && reverse.diffs.count == 2 && reverse.diffs.allSatisfy { $0.db == 3 && $0.sourceDb == 0 },
                "\(reverse.run.stderr)")
            for bad in [["--db-map", "3=0", "--db-map", "0=1"], ["--db-map", "3=0", "--db", "0"], ["--db-map", "3=0", "--db-map", "3=1"]] {
                let o = try compare("redis://127.0.0.1:17521", "redis://127.0.0.1:17530", bad)
                #expect(o.run.status == 2, "\(bad): \(o.run.stderr)")
            }
        }
    }

    /// A filter or database that selects nothing is not a match: exit 2, unless --allow-empty.
    @Test func nothingComparedIsNotAMatch() async throws {
        try await offPool { [self] in
            let a = TestPaths.fixture("dataset-redis7.rdb"), b = TestPaths.fixture("dataset-valkey8.rdb")
            for extra in [["--db", "7"], ["--db", "99999"], ["--match", "["], ["--match", "no-such-prefix:*"]] {
                let o = try compare(a, b, extra)
                #expect(o.run.status == 2 && o.run.stderr.contains("nothing was compared"), "\(extra): \(o.run.status) \(o.run.stderr)")
                let allowed = try compare(a, b, extra + ["--allow-empty"])
                #expect(allowed.run.status == 0, "\(extra): \(allowed.run.stderr)")
            }
            try TestServers.start("fc-empty", .redis7, port: 17541)
            defer { TestServers.stop("fc-empty") }
            let live = try compare("redis://127.0.0.1:17541", a, ["--db", "7"])
            #expect(live.run.status == 2 && live.run.stderr.contains("nothing was compared"), "\(live.run.stderr)")
            // One side listing nothing while the other lists keys: differences, and a warning.
            let empty = try compare(a, "redis://127.0.0.1:17541")
            #expect(empty.run.status == 1)
            let warnings = empty.summary["warnings"] as? [String] ?? []
            #expect(warnings.count == 1 && warnings[0].contains("target lists no keys"), "\(warnings)")
            let table = try slotdiff(["compare", a, "redis://127.0.0.1:17541", "--out", path("t.jsonl.zst"), "--quiet"])
            #expect(table.stdout.contains("WARNING"), "\(table.stdout)")
        }
    }

    /// One huge element among thousands of tiny ones, for every collection type: a sampled
    /// size estimate calls such a value small. It must never be read with one DUMP: the
    /// servers' SLOWLOG (every command logged) shows no DUMP of these keys, and the check is exact.
    @Test func lopsidedCollectionsStayUnderTheSizeBound() async throws {
        try await offPool { [self] in
            try TestServers.start("fc-big-src", .redis7, port: 17551)
            try TestServers.start("fc-big-dst", .valkey8, port: 17552)
            defer { TestServers.stop("fc-big-src"); TestServers.stop("fc-big-dst") }
            let tiny = """
                for i = 1, 5000 do
                  redis.call('HSET', 'big:hash', 'f' .. i, 'v')
                  redis.call('RPUSH', 'big:list', 'e' .. i)
                  redis.call('SADD', 'big:set', 'm' .. i)
                  redis.call('ZADD', 'big:zset', i, 'm' .. i)
                  redis.call('XADD', 'big:stream', i .. '-1', 'f', 'v')
                end
                return 1
                """
            var huge = Data(count: 20 << 20)
            huge.withUnsafeMutableBytes { p in for i in 0..<p.count { p[i] = UInt8(truncatingIfNeeded: (i &* 2_654_435_761) >> 13) } }
            for port in [17551, 17552] {
                try TestServers.cli(port: port, ["EVAL", tiny, "0"])
                for cmd in [
                    ["HSET", "big:hash", "huge"], ["RPUSH", "big:list"], ["SADD", "big:set"], ["ZADD", "big:zset", "0.5"],
                    ["XADD", "big:stream", "9999-1", "huge"]
                ] {
                    let r = try run("/usr/bin/redis-cli", ["-p", "\(port)", "-x"] + cmd, stdin: huge)
                    #expect(r.status == 0 && !r.stdout.contains("ERR"), "\(cmd): \(r.stdout) \(r.stderr)")
                }
                try TestServers.cli(port: port, ["CONFIG", "SET", "slowlog-log-slower-than", "0"])
                try TestServers.cli(port: port, ["CONFIG", "SET", "slowlog-max-len", "100000"])
                try TestServers.cli(port: port, ["SLOWLOG", "RESET"])
            }
            let o = try compare("redis://127.0.0.1:17551", "redis://127.0.0.1:17552")
            #expect(o.run.status == 0, "\(o.run.stderr) \(o.kinds)")
            #expect(o.sourceKeys == 5 && o.targetKeys == 5)
            for port in [17551, 17552] {
                let log = try TestServers.cli(port: port, ["SLOWLOG", "GET", "100000"])
                let lines = log.split(whereSeparator: \.isNewline).map(String.init)
                // The read-plan probe's DUMP of a key that does not exist is not one of these.
                let dumps = lines.indices.filter { lines[$0] == "DUMP" && !lines[min($0 + 1, lines.count - 1)].hasPrefix("slotdiff-probe-") }
                #expect(dumps.isEmpty, "port \(port): DUMP sent \(dumps.count) times: \(dumps.prefix(3).map { lines[min($0 + 1, lines.count - 1)] })")
                #expect(lines.contains("MEMORY") || lines.contains("HLEN"), "port \(port): slowlog did not record the check")
            }
            // The difference in the huge element is found through the chunked reads.
            var changed = huge
            changed[12345] ^= 0xFF
            let r = try run("/usr/bin/redis-cli", ["-p", "17552", "-x", "HSET", "big:hash", "huge"], stdin: changed)
            #expect(r.status == 0)
            let d = try compare("redis://127.0.0.1:17551", "redis://127.0.0.1:17552")
            #expect(d.run.status == 1 && d.kinds == ["value 0 big:hash"], "\(d.kinds) \(d.run.stderr)")
        }
    }

    /// A server killed (kill -9) at a random point of its listing and restarted from its dump
    /// a moment later: the listing starts again on the new process, so the result is exact
    /// (30 keys missing, every key counted once) — or exit 2. Both sides, several seeds.
    @Test(arguments: ["source", "target"])
    func restartDuringTheListing(side: String) async throws {
        try await offPool { [self] in
            let (srcPort, dstPort) = side == "source" ? (17561, 17562) : (17563, 17564)
            let names = ["fc-rs-\(side)-a", "fc-rs-\(side)-b"]
            try TestServers.start(names[0], .redis7, port: srcPort)
            try TestServers.start(names[1], .redis7, port: dstPort)
            defer { for n in names { TestServers.stop(n) } }
            for port in [srcPort, dstPort] { try TestServers.cli(port: port, ["DEBUG", "POPULATE", "30000", "key"]) }
            try TestServers.cli(port: srcPort, ["EVAL", Planted.onSource, "0"])
            let victim = side == "source" ? (names[0], srcPort) : (names[1], dstPort)
            try TestServers.cli(port: victim.1, ["SAVE"])
            let saved = path("\(side)-saved.rdb")
            try FileManager.default.copyItem(atPath: TestPaths.root.appendingPathComponent(".servers/\(victim.0)/dump.rdb").path, toPath: saved)
            try checkSurvivesRestarts(
                source: "redis://127.0.0.1:\(srcPort)", target: "redis://127.0.0.1:\(dstPort)", log: "restart-\(side)",
                pidFile: TestPaths.root.appendingPathComponent(".servers/\(victim.0)/server.pid").path,
                delays: [0.3, 1.1, 1.9], targetKeys: 30000, victim: "127.0.0.1:\(victim.1)"
            ) {
                TestServers.stop(victim.0)
                try TestServers.start(victim.0, .redis7, port: victim.1, load: saved)
            }
        }
    }

    /// A cluster node killed (kill -9) while the cluster is listed, and started again in place
    /// from its dump and nodes.conf: its listing starts over on the new process, so the result
    /// is exact — or exit 2. Several seeds; the other side is a standalone server.
    @Test func clusterNodeRestartDuringTheListing() async throws {
        try await offPool { [self] in
            try TestServers.cluster("fc-crs", .redis7, base: 17570, n: 3)
            try TestServers.start("fc-crs-dst", .valkey8, port: 17579)
            defer { TestServers.stop("fc-crs"); TestServers.stop("fc-crs-dst") }
            try Planted.fill(cluster: 17570, server: 17579)
            let victim = 17571
            try TestServers.cli(port: victim, ["SAVE"])
            try checkSurvivesRestarts(
                source: "redis://127.0.0.1:17570", target: "redis://127.0.0.1:17579", log: "cluster-restart",
                pidFile: TestPaths.root.appendingPathComponent(".servers/fc-crs/\(victim)/server.pid").path,
                delays: [0.3, 1.0, 1.7], targetKeys: nil, victim: nil,
                restart: { try TestServers.revive("fc-crs", port: victim) }
            ) {
                // The node is back with every key before the next run.
                var held = 0
                for port in 17570...17572 { held += try Self.dbsize(port) }
                #expect(held == 30030)
            }
        }
    }

    /// Compares `source` with `target` once per delay, killing (kill -9) the server whose pid
    /// is in `pidFile` that long after the start and starting it again with `restart`. Each run
    /// must give the exact result — 30 keys missing, the source's 30030 keys (and the target's
    /// `targetKeys`) each counted once — or exit 2 (naming `victim`), never 0; and a restart a
    /// second or two long must not end every run: the listing starts over.
    func checkSurvivesRestarts(
        source: String, target: String, log name: String, pidFile: String, delays: [Double], targetKeys: Int?,
        victim: String?, restart: () throws -> Void, afterEach: () throws -> Void = {}
    ) throws {
        var exact = 0
        for (seed, delay) in delays.enumerated() {
            let log = path("\(name)-\(seed).jsonl.zst")
            let job = try Background(
                TestPaths.slotdiffBinary,
                [
                    "compare", source, target,
                    "--out", log, "--qps", "20000", "--round-delay", "50ms", "--json", "--quiet"
                ])
            Thread.sleep(forTimeInterval: delay)
            let pid = try #require(
                Int32(
                    String(decoding: try Data(contentsOf: URL(fileURLWithPath: pidFile)), as: UTF8.self)
                        .trimmingCharacters(in: .whitespacesAndNewlines)))
            kill(pid, SIGKILL)
            Thread.sleep(forTimeInterval: 0.3)
            try restart()
            let r = job.wait(timeout: 300)
            #expect(r.status != 0, "seed \(seed): a restart gave exit 0")
            if r.status == 1 {
                var diffs: [Difference] = []
                try DiffLogReader(path: log).forEach { diffs.append($0) }
                let summary = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
                #expect(diffs.count == 30 && diffs.allSatisfy { $0.kind == .missing }, "seed \(seed): \(diffs.count) differences")
                #expect((summary["source"] as? [String: Any])?["keys"] as? Int == 30030, "seed \(seed): \(summary["source"] ?? "")")
                if let targetKeys {
                    #expect((summary["target"] as? [String: Any])?["keys"] as? Int == targetKeys, "seed \(seed): \(summary["target"] ?? "")")
                }
                exact += 1
            } else {
                #expect(r.status == 2 && (victim.map(r.stderr.contains) ?? true), "seed \(seed): \(r.status) \(r.stderr)")
            }
            try afterEach()
        }
        #expect(exact >= 1, "no run survived the restart")
    }
}
