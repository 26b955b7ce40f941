import Foundation
import SlotdiffCore
import TestSupport
import Testing

/// Servers whose commands are renamed or disabled (`rename-command` in their configuration),
/// checked with `--rename-command`: the drift pair is reported exactly, each side reads with
/// its own servers' names, a disabled command is never sent, and no command is wider than the
/// argument limit.
@Suite(.serialized, .enabled(if: TestServers.available, "server binaries missing: run Scripts/setup"))
struct RenameCommandTests {
    let dir = TestPaths.temporaryDirectory()

    func compare(_ a: String, _ b: String, _ extra: [String] = []) throws -> CheckRun { try CheckRun.compare(a, b, extra, in: dir) }

    func expected() throws -> Set<String> {
        let data = try Data(contentsOf: URL(fileURLWithPath: TestPaths.fixture("drift-expected.json")))
        let list = try JSONSerialization.jsonObject(with: data) as! [[String: Any]]
        return Set(
            list.map { o in
                let key = (o["key"] as? String).map { Array($0.utf8) } ?? Array(Data(base64Encoded: o["key_base64"] as! String)!)
                return "\(o["kind"]!) \(o["db"]!) \(key)"
            })
    }

    func got(_ o: CheckRun) -> Set<String> { Set(o.diffs.map { "\($0.kind.rawValue) \($0.db) \($0.key)" }) }

    /// A source whose DUMP, SCAN and TYPE have secret names: with the names, the drift pair
    /// exactly and DUMP used (the default plan); without them, exit 2 naming SCAN; with them
    /// given for both sides, the target (which knows the usual names) is refused them, and the
    /// message says what was sent.
    @Test func renamedCommandsAreSentUnderTheServersNames() async throws {
        try await offPool { [self] in
            let secret = ["DUMP": "dump-7f3a", "SCAN": "scan-7f3a", "TYPE": "type-7f3a"]
            try TestServers.start(
                "rc-src", .redis7, port: 17900, load: TestPaths.fixture("drift-source.rdb"),
                args: secret.sorted { $0.key < $1.key }.flatMap { ["--rename-command", $0.key, $0.value] })
            try TestServers.start("rc-dst", .valkey8, port: 17901, load: TestPaths.fixture("drift-target.rdb"))
            defer { TestServers.stop("rc-src"); TestServers.stop("rc-dst") }
            let src = "redis://127.0.0.1:17900", dst = "redis://127.0.0.1:17901"
            let names = secret.flatMap { ["--rename-command", "source:\($0.key)=\($0.value)"] }
            let o = try compare(src, dst, names)
            #expect(o.run.status == 1, "\(o.run.status) \(o.run.stderr)")
            let want = try expected()
            #expect(got(o) == want, "unexpected: \(got(o).subtracting(want)) missed: \(want.subtracting(got(o)))")
            // DUMP ran under its secret name: no fallback on either side.
            #expect(o.read("source") == nil && o.read("target") == nil, "\(String(describing: o.read("source")))")

            let bare = try compare(src, dst)
            #expect(bare.run.status == 2 && bare.run.stderr.contains("SCAN refused"), "\(bare.run.stderr)")

            let both = try compare(src, dst, secret.flatMap { ["--rename-command", "\($0.key)=\($0.value)"] })
            #expect(both.run.status == 2, "\(both.run.stderr)")
            #expect(both.run.stderr.contains("127.0.0.1:17901") && both.run.stderr.contains("was sent as '"), "\(both.run.stderr)")
        }
    }

    /// DUMP and PEXPIRETIME disabled on the source, MEMORY on the target: read by type and PTTL
    /// from the start, the drift pair exactly, the plan named, and the servers never sent the
    /// disabled commands (no "unknown command" counted, where a run without the option has some).
    @Test func disabledCommandsAreReadAnotherWayAndNeverSent() async throws {
        try await offPool { [self] in
            try TestServers.start(
                "rc-nodump", .redis7, port: 17902, load: TestPaths.fixture("drift-source.rdb"),
                args: ["--rename-command", "DUMP", "", "--rename-command", "PEXPIRETIME", ""])
            try TestServers.start(
                "rc-nomem", .valkey8, port: 17903, load: TestPaths.fixture("drift-target.rdb"), args: ["--rename-command", "MEMORY", ""])
            defer { TestServers.stop("rc-nodump"); TestServers.stop("rc-nomem") }
            let src = "redis://127.0.0.1:17902", dst = "redis://127.0.0.1:17903"
            func unknownCommands(_ port: Int) throws -> Int {
                let stats = try TestServers.cli(port: port, ["INFO", "errorstats"])
                let line = stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("errorstat_ERR:") }
                return line.flatMap { $0.split(separator: "=").last }.flatMap { Int($0) } ?? 0
            }
            let want = try expected()
            let found = try compare(src, dst)
            #expect(found.run.status == 1 && got(found) == want, "\(found.run.stderr)")
            let unknownBefore = (try unknownCommands(17902), try unknownCommands(17903))
            #expect(unknownBefore.0 > 0 && unknownBefore.1 > 0, "\(unknownBefore)")
            for port in [17902, 17903] { try TestServers.cli(port: port, ["CONFIG", "RESETSTAT"]) }

            let told = [
                "--rename-command", "source:DUMP=", "--rename-command", "source:PEXPIRETIME=", "--rename-command", "target:MEMORY="
            ]
            let o = try compare(src, dst, told)
            #expect(o.run.status == 1, "\(o.run.status) \(o.run.stderr)")
            #expect(got(o) == want, "unexpected: \(got(o).subtracting(want)) missed: \(want.subtracting(got(o)))")
            #expect(
                o.read("source")
                    == "values by type reads: DUMP disabled (--rename-command DUMP=); expiry by PTTL: PEXPIRETIME disabled (--rename-command PEXPIRETIME=)",
                "\(String(describing: o.read("source")))")
            #expect(o.read("target") == "values by type reads: MEMORY USAGE disabled (--rename-command MEMORY=)", "\(String(describing: o.read("target")))")
            let unknownAfter = (try unknownCommands(17902), try unknownCommands(17903))
            #expect(unknownAfter == (0, 0), "\(unknownAfter)")

            // Nothing reads a type without TYPE: exit 2 naming it and the option.
            let none = try compare(src, dst, ["--rename-command", "source:TYPE="])
            #expect(
                none.run.status == 2 && none.run.stderr.contains("TYPE refused") && none.run.stderr.contains("--rename-command TYPE="), "\(none.run.stderr)")
        }
    }

    /// Hashes with field TTLs of 5,000 fields kept as listpacks, read in chunks: one HSCAN
    /// reply holds every field, and their expiries are asked in commands of at most 3,999
    /// arguments (ElastiCache Serverless refuses wider ones; slotdiff sends none). A field
    /// expiry changed on one side is found.
    @Test func fieldExpiriesOfBigHashesFitTheArgumentLimit() async throws {
        try await offPool { [self] in
            let args = ["--hash-max-listpack-entries", "100000"]
            try TestServers.start("rc-wide-a", .redis8, port: 17904, args: args)
            try TestServers.start("rc-wide-b", .redis8, port: 17905, args: args)
            defer { TestServers.stop("rc-wide-a"); TestServers.stop("rc-wide-b") }
            let fill = """
                for i = 1, 5000 do redis.call('HSET', 'wide', 'field-' .. i, i) end
                for i = 1, 5000, 7 do redis.call('HPEXPIREAT', 'wide', 4200000000000 + i, 'FIELDS', 1, 'field-' .. i) end
                return 1
                """
            for port in [17904, 17905] {
                try TestServers.cli(port: port, ["EVAL", fill, "0"])
                #expect(try TestServers.cli(port: port, ["OBJECT", "ENCODING", "wide"]).contains("listpack"))
            }
            let a = "redis://127.0.0.1:17904", b = "redis://127.0.0.1:17905"
            let same = try compare(a, b, ["--big-key-threshold", "1"])
            #expect(same.run.status == 0, "\(same.run.status) \(same.run.stderr)")
            #expect(try TestServers.calls(port: 17904, "hpexpiretime") == 2)  // 5,000 fields in two commands
            try TestServers.cli(port: 17905, ["HPEXPIREAT", "wide", "4300000000000", "FIELDS", "1", "field-4999"])
            let changed = try compare(a, b, ["--big-key-threshold", "1"])
            #expect(changed.run.status == 1 && changed.kindsByKey == ["value wide"], "\(changed.kindsByKey) \(changed.run.stderr)")
        }
    }

    /// The read plan is probed when a side is opened, on a key of its own: a user refused DUMP
    /// is named in the summary even where no value needed DUMP (strings only), and a user
    /// whose ACL key pattern the probe's key falls outside keeps the default plan (a refused
    /// key is not a refused command), on Redis 7.0 and Valkey 8.1, whose messages differ.
    @Test(arguments: [TestServers.Kind.redis7, .valkey8])
    func theProbeTellsARefusedCommandFromARefusedKey(_ kind: TestServers.Kind) async throws {
        try await offPool { [self] in
            let port = kind == .redis7 ? 17920 : 17921
            try TestServers.start("rc-probe", kind, port: port)
            defer { TestServers.stop("rc-probe") }
            try TestServers.cli(port: port, ["EVAL", "for i = 1, 50 do redis.call('SET', 'k:' .. i, i) end return 1", "0"])
            let base = ["reset", "on", ">pw", "~k:*", "&*", "-@all", "+@read", "+@connection", "+info"]
            try TestServers.cli(port: port, ["ACL", "SETUSER", "keys"] + base)
            try TestServers.cli(port: port, ["ACL", "SETUSER", "nodump"] + base + ["-dump"])
            let plain = "redis://127.0.0.1:\(port)"
            let keys = try compare(plain, "redis://keys:pw@127.0.0.1:\(port)")
            #expect(keys.run.status == 0 && keys.read("target") == nil, "\(String(describing: keys.read("target"))) \(keys.run.stderr)")
            let nodump = try compare(plain, "redis://nodump:pw@127.0.0.1:\(port)")
            #expect(nodump.run.status == 0, "\(nodump.run.stderr)")
            #expect(nodump.read("target") == "values by type reads: DUMP refused (NOPERM)", "\(String(describing: nodump.read("target")))")
        }
    }
}
