import Foundation
import HashSlots
import SlotdiffCore
import TestSupport
import Testing

/// `slotdiff repair` against real servers: a check, its script applied with `redis-cli --pipe`
/// as an operator would, and a check again that must find the sides equal.
@Suite(.serialized, .enabled(if: TestServers.available, "server binaries missing: run Scripts/setup"))
struct RepairTests {
    let dir = TestPaths.temporaryDirectory()
    func path(_ n: String) -> String { dir.appendingPathComponent(n).path }

    /// Runs `repair`; the script's commands when it was written (exit 0).
    @discardableResult
    func repair(_ log: String, source: String, out: String, _ extra: [String] = []) throws -> (RunResult, [[[UInt8]]]) {
        let r = try slotdiff(["repair", log, "--source", source, "--out", path(out)] + extra, timeout: 300)
        #expect(r.status == 0, "repair: \(r.stdout) \(r.stderr)")
        return (r, r.status == 0 ? try scriptCommands(path(out)) : [])
    }

    /// One command in RESP, for `redis-cli --pipe` to set servers up.
    static func resp(_ args: [String]) -> Data {
        var d = Data("*\(args.count)\r\n".utf8)
        for a in args { d.append(Data("$\(a.utf8.count)\r\n\(a)\r\n".utf8)) }
        return d
    }

    /// Applies a script as the README says; redis-cli counts the error replies.
    func apply(_ script: String, port: Int) throws {
        let r = try run("/bin/sh", ["-c", "redis-cli -p \(port) --pipe < '\(path(script))'"], timeout: 300)
        #expect(r.status == 0 && r.stdout.contains("errors: 0,"), "redis-cli --pipe: \(r.stdout) \(r.stderr)")
    }

    /// The keys a script writes or deletes (its commands' second argument, SELECT aside), by
    /// database.
    func touched(_ commands: [[[UInt8]]]) -> Set<String> {
        var db = 0
        var keys = Set<String>()
        for c in commands {
            let name = String(decoding: c[0], as: UTF8.self)
            if name == "SELECT" {
                db = Int(String(decoding: c[1], as: UTF8.self))!
                continue
            }
            // XGROUP CREATE/DESTROY name the key third.
            keys.insert("\(db) \(Difference.display(name == "XGROUP" ? c[2] : c[1]))")
        }
        return keys
    }

    /// The drift pair, live Redis 7.0 → Valkey 8.1: the script touches only logged keys, and
    /// with `--keep-extra` the extra keys are all that is left; a `ttl` key whose value changed
    /// on the source after the check is written whole; a second repair leaves nothing.
    @Test func liveDriftPair() async throws {
        try await offPool { [self] in
            try TestServers.start("fix-src", .redis7, port: 17750, load: TestPaths.fixture("drift-source.rdb"))
            try TestServers.start("fix-dst", .valkey8, port: 17751, load: TestPaths.fixture("drift-target.rdb"))
            defer { TestServers.stop("fix-src"); TestServers.stop("fix-dst") }
            let src = "redis://127.0.0.1:17750", dst = "redis://127.0.0.1:17751"
            let first = try CheckRun.compare(src, dst, [], in: dir)
            #expect(first.run.status == 1 && first.diffs.count == 37, "\(first.run.stderr)")
            let logged = Set(first.diffs.map { "\($0.db) \($0.displayKey)" })
            let extras = first.diffs.filter { $0.kind == .extra }.map { "\($0.db) \($0.displayKey)" }.sorted()
            #expect(extras.count == 4)

            // A ttl difference whose value changes on the source after the check.
            let ttl = try #require(first.diffs.first { $0.kind == .ttl && $0.db == 0 })
            try TestServers.cli(port: 17750, ["SET", ttl.displayKey, "changed after the check"])

            let log = try #require(first.summary["log"] as? String)
            let (_, script) = try repair(log, source: src, out: "keep.resp", ["--keep-extra"])
            let keys = touched(script)
            #expect(keys.isSubset(of: logged), "keys not in the log: \(keys.subtracting(logged))")
            #expect(keys.count == 33, "\(keys.count) keys")
            #expect(script.allSatisfy { $0.count <= 3999 })
            try apply("keep.resp", port: 17751)
            let second = try CheckRun.compare(src, dst, [], in: dir)
            #expect(second.run.status == 1, "\(second.run.stdout) \(second.run.stderr)")
            #expect(second.diffs.map { "\($0.db) \($0.displayKey)" }.sorted() == extras)
            #expect(second.diffs.allSatisfy { $0.kind == .extra })

            let log2 = try #require(second.summary["log"] as? String)
            try repair(log2, source: src, out: "all.resp")
            try apply("all.resp", port: 17751)
            // Checked again while watching the servers' round trips: the summary says what was held.
            let third = try CheckRun.compare(src, dst, ["--max-latency", "50ms"], in: dir)
            #expect(third.run.status == 0, "\(third.run.stdout) \(third.run.stderr)")
            let throttle = ((third.summary["source"] as? [String: Any])?["inputs"] as? [[String: Any]])?.first?["throttle"] as? String
            #expect(throttle?.contains("(limit 50.0 ms)") == true, "\(third.summary)")

            // What cannot be a repair is refused before anything is written.
            let dup = try slotdiff(["repair", log, "--source", src, "--out", path("d.resp"), "--kind", "duplicate"])
            #expect(dup.status == 2 && dup.stderr.contains("duplicate"), "\(dup.stderr)")
            let over = try slotdiff(["repair", log, "--source", src, "--out", log])
            #expect(over.status == 2 && over.stderr.contains("diff log"), "\(over.stderr)")
            let digestFile = path("src.slotdiff")
            #expect(try slotdiff(["digest", src, "--out", digestFile, "--quiet"]).status == 0)
            let noValues = try slotdiff(["repair", log, "--source", digestFile, "--out", path("n.resp")])
            #expect(noValues.status == 2 && noValues.stderr.contains("holds no values"), "\(noValues.stderr)")
            #expect(!FileManager.default.fileExists(atPath: path("n.resp")))
        }
    }

    /// From dump files: Redis 8.2's RDB 12 dump into Valkey 8.1 (whose RESTORE refuses RDB 12
    /// payloads) — every type, streams with consumer groups, intsets, big encodings, three
    /// databases — and Redis 8.2's hash-field expiries into Redis 8.2.
    @Test func fromDumpFiles() async throws {
        try await offPool { [self] in
            for (fixture, kind, port) in [("dataset-redis8.rdb", TestServers.Kind.valkey8, 17752), ("hfe-redis8.rdb", .redis8, 17753)] {
                try TestServers.start("fix-\(port)", kind, port: port)
                defer { TestServers.stop("fix-\(port)") }
                let dump = TestPaths.fixture(fixture), dst = "redis://127.0.0.1:\(port)"
                let before = try CheckRun.compare(dump, dst, ["--explain", "0"], in: dir)
                #expect(before.run.status == 1 && before.diffs.allSatisfy { $0.kind == .missing }, "\(before.run.stderr)")
                let log = try #require(before.summary["log"] as? String)
                let (_, script) = try repair(log, source: dump, out: "\(port).resp")
                #expect(touched(script).count == before.diffs.count)
                try apply("\(port).resp", port: port)
                let after = try CheckRun.compare(dump, dst, [], in: dir)
                #expect(after.run.status == 0, "\(fixture): \(after.kinds) \(after.run.stderr)")
            }
        }
    }

    /// Keys far over the chunked readers' bounds, each differing by one element: the script
    /// writes them in batches (no command over 1,000 elements or 3,999 arguments; the string in
    /// 1 MiB pieces), and the target is equal afterwards.
    @Test func bigKeysInBatches() async throws {
        try await offPool { [self] in
            try TestServers.start("fix-big-src", .redis7, port: 17754)
            try TestServers.start("fix-big-dst", .valkey8, port: 17755)
            defer { TestServers.stop("fix-big-src"); TestServers.stop("fix-big-dst") }
            var setup = Data()
            func command(_ args: [String]) { setup.append(Self.resp(args)) }
            for start in stride(from: 0, to: 20_000, by: 500) {
                let n = start..<start + 500
                command(["HSET", "big:hash"] + n.flatMap { ["f\($0)", "v\($0)"] })
                command(["SADD", "big:set"] + n.map { "m\($0)" })
                command(["RPUSH", "big:list"] + n.map { "e\($0)" })
                command(["ZADD", "big:zset"] + n.flatMap { ["\(Double($0) / 7)", "z\($0)"] })
            }
            command(["SET", "big:string", String(repeating: "s", count: 3_000_000)])
            command(["PEXPIREAT", "big:hash", "4102444800000"])
            for port in [17754, 17755] {
                let r = try run("/bin/sh", ["-c", "redis-cli -p \(port) --pipe"], stdin: setup, timeout: 120)
                #expect(r.stdout.contains("errors: 0,"), "\(r.stdout)")
            }
            try TestServers.cli(port: 17755, ["HSET", "big:hash", "f123", "changed"])
            try TestServers.cli(port: 17755, ["SREM", "big:set", "m7"])
            try TestServers.cli(port: 17755, ["LSET", "big:list", "19999", "changed"])
            try TestServers.cli(port: 17755, ["ZADD", "big:zset", "0.5", "z3"])
            try TestServers.cli(port: 17755, ["SETRANGE", "big:string", "2999999", "t"])
            let src = "redis://127.0.0.1:17754", dst = "redis://127.0.0.1:17755"
            let before = try CheckRun.compare(src, dst, ["--explain", "0"], in: dir)
            #expect(before.run.status == 1 && before.diffs.count == 5, "\(before.kinds) \(before.run.stderr)")
            let log = try #require(before.summary["log"] as? String)
            let (_, script) = try repair(log, source: src, out: "big.resp")
            #expect(script.allSatisfy { $0.count <= 2002 && $0.reduce(0) { $0 + $1.count } <= 2 << 20 })
            #expect(script.filter { $0[0] == Array("HSET".utf8) }.count == 20)
            #expect(script.filter { $0[0] == Array("APPEND".utf8) }.count == 2)
            try apply("big.resp", port: 17755)
            let after = try CheckRun.compare(src, dst, [], in: dir)
            #expect(after.run.status == 0, "\(after.kinds) \(after.run.stderr)")
        }
    }

    /// A cluster target: one script per node that owns the keys' slots, each applied to its
    /// node (a key sent to another node would be a MOVED error, which redis-cli counts).
    @Test func clusterTargetOneScriptPerNode() async throws {
        try await offPool { [self] in
            try TestServers.start("fix-one", .redis7, port: 17756)
            try TestServers.cluster("fix-cl", .valkey8, base: 17760, n: 3)
            defer { TestServers.stop("fix-one"); TestServers.stop("fix-cl") }
            var setup = Data()
            func command(_ args: [String]) { setup.append(Self.resp(args)) }
            for i in 0..<300 {
                switch i % 4 {
                case 0: command(["SET", "k:\(i)", "v\(i)"])
                case 1: command(["HSET", "h:\(i)", "a", "1", "b", "\(i)"])
                case 2: command(["ZADD", "z:\(i)", "1.5", "x", "\(i)", "y"])
                default: command(["XADD", "s:\(i)", "\(i + 1)-0", "f", "\(i)"])
                }
            }
            let r = try run("/bin/sh", ["-c", "redis-cli -p 17756 --pipe"], stdin: setup, timeout: 60)
            #expect(r.stdout.contains("errors: 0,"), "\(r.stdout)")
            // A few keys on the target already, one of them only there.
            try TestServers.cli(port: 17760, ["SET", "k:0", "other"], cluster: true)
            try TestServers.cli(port: 17760, ["SET", "only:target", "x"], cluster: true)
            let src = "redis://127.0.0.1:17756", dst = "redis://127.0.0.1:17760"
            let before = try CheckRun.compare(src, dst, ["--explain", "0"], in: dir)
            #expect(before.run.status == 1 && before.diffs.count == 301, "\(before.kinds) \(before.run.stderr)")
            let log = try #require(before.summary["log"] as? String)
            let r2 = try slotdiff(["repair", log, "--source", src, "--target", dst, "--out", path("cl.resp")], timeout: 300)
            #expect(r2.status == 0, "\(r2.stdout) \(r2.stderr)")
            var keys = 0
            for port in 17760...17762 {
                let script = "cl.127.0.0.1-\(port).resp"
                #expect(FileManager.default.fileExists(atPath: path(script)), "\(r2.stdout)")
                #expect(r2.stdout.contains("redis-cli -h 127.0.0.1 -p \(port) --pipe < \(path(script))"), "\(r2.stdout)")
                keys += touched(try scriptCommands(path(script))).count
                try apply(script, port: port)
            }
            #expect(keys == 301)
            let after = try CheckRun.compare(src, dst, [], in: dir)
            #expect(after.run.status == 0, "\(after.kinds) \(after.run.stderr)")
        }
    }
}
