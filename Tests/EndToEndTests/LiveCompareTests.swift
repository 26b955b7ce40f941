import Foundation
import SlotdiffCore
import TestSupport
import Testing

/// Live checks against real servers: the command line end to end.
@Suite(.serialized, .enabled(if: TestServers.available, "server binaries missing: run Scripts/setup"))
struct LiveCompareTests {
    let dir = TestPaths.temporaryDirectory()
    func path(_ n: String) -> String { dir.appendingPathComponent(n).path }

    func compare(_ a: String, _ b: String, _ extra: [String] = [], log: String = "live.jsonl.zst") throws -> (RunResult, [Difference]) {
        let r = try slotdiff(["compare", a, b, "--out", path(log), "--round-delay", "50ms"] + extra, timeout: 300)
        var diffs: [Difference] = []
        if r.status == 0 || r.status == 1 { try DiffLogReader(path: path(log)).forEach { diffs.append($0) } }
        return (r, diffs)
    }

    func expected() throws -> Set<String> {
        let data = try Data(contentsOf: URL(fileURLWithPath: TestPaths.fixture("drift-expected.json")))
        let list = try JSONSerialization.jsonObject(with: data) as! [[String: Any]]
        return Set(
            list.map { o in
                let key = (o["key"] as? String).map { Array($0.utf8) } ?? Array(Data(base64Encoded: o["key_base64"] as! String)!)
                return "\(o["kind"]!) \(o["db"]!) \(key)"
            })
    }

    /// Redis 7.0 → Valkey 8.1, several databases, every type, binary keys, known drift of every
    /// kind and cases that must not be reported: reported exactly, exit 1.
    @Test func standaloneDriftIsReportedExactly() async throws {
        try await offPool { [self] in
            try TestServers.start("lt-src", .redis7, port: 17301, load: TestPaths.fixture("drift-source.rdb"))
            try TestServers.start("lt-dst", .valkey8, port: 17302, load: TestPaths.fixture("drift-target.rdb"))
            defer { TestServers.stop("lt-src"); TestServers.stop("lt-dst") }
            let (r, diffs) = try compare("redis://127.0.0.1:17301", "redis://127.0.0.1:17302")
            #expect(r.status == 1, "\(r.stderr)")
            let got = Set(diffs.map { "\($0.kind.rawValue) \($0.db) \($0.key)" })
            let want = try expected()
            #expect(got == want, "unexpected: \(got.subtracting(want)) missed: \(want.subtracting(got))")
            // The same through the chunked readers only (every value over a 1-byte bound).
            let (c, chunkedDiffs) = try compare("redis://127.0.0.1:17301", "redis://127.0.0.1:17302", ["--big-key-threshold", "1"], log: "c.jsonl.zst")
            #expect(c.status == 1, "\(c.stderr)")
            #expect(Set(chunkedDiffs.map { "\($0.kind.rawValue) \($0.db) \($0.key)" }) == want)
            // Read in four slot-range passes (bounded memory): the same result, and each server
            // listed once (kept per pass in temporary files), not once per pass.
            for port in [17301, 17302] { try TestServers.cli(port: port, ["CONFIG", "RESETSTAT"]) }
            let (p, passDiffs) = try compare("redis://127.0.0.1:17301", "redis://127.0.0.1:17302", ["--passes", "4", "--json"], log: "p.jsonl.zst")
            #expect(p.status == 1, "\(p.stderr)")
            for port in [17301, 17302] {
                let dbs = try TestServers.cli(port: port, ["INFO", "keyspace"]).split(whereSeparator: \.isNewline).filter { $0.hasPrefix("db") }.count
                let scans = try TestServers.calls(port: port, "scan")
                #expect(dbs >= 2 && scans == dbs, "port \(port): \(scans) SCAN calls for \(dbs) databases")
            }
            #expect(Set(passDiffs.map { "\($0.kind.rawValue) \($0.db) \($0.key)" }) == want)
            let summary = try JSONSerialization.jsonObject(with: Data(p.stdout.utf8)) as! [String: Any]
            #expect(summary["passes"] as? Int == 4)
            #expect((summary["source"] as! [String: Any])["keys"] as? Int == 230)
            let (fp, fileDiffs) = try compare(TestPaths.fixture("drift-source.rdb"), "redis://127.0.0.1:17302", ["--passes", "3"], log: "fp.jsonl.zst")
            #expect(fp.status == 1)
            #expect(Set(fileDiffs.map { "\($0.kind.rawValue) \($0.db) \($0.key)" }) == want)
        }
    }

    /// The same logical dataset on Redis 7.0 and Valkey 8.1 (other encodings and orders),
    /// read with DUMP and with the chunked readers, and against the dump files: exit 0.
    @Test func identicalDataMatches() async throws {
        try await offPool { [self] in
            try TestServers.start("lt-a", .redis7, port: 17311, load: TestPaths.fixture("dataset-redis7.rdb"))
            try TestServers.start("lt-b", .valkey8, port: 17312, load: TestPaths.fixture("dataset-valkey8.rdb"))
            try TestServers.start("lt-c", .redis8, port: 17313, load: TestPaths.fixture("dataset-redis8.rdb"))
            defer { TestServers.stop("lt-a"); TestServers.stop("lt-b"); TestServers.stop("lt-c") }
            for extra in [[], ["--big-key-threshold", "1"], ["--mode", "length"], ["--mode", "keys"]] {
                let (r, diffs) = try compare("redis://127.0.0.1:17311", "redis://127.0.0.1:17312", extra)
                #expect(r.status == 0, "\(extra): \(r.stdout) \(r.stderr) \(diffs.prefix(3).map(\.displayKey))")
            }
            let (r8, _) = try compare("redis://127.0.0.1:17313", "redis://127.0.0.1:17311", ["--big-key-threshold", "1"])
            #expect(r8.status == 0, "\(r8.stdout) \(r8.stderr)")
            // File against live, both directions: did the restore work?
            let (f1, _) = try compare(TestPaths.fixture("dataset-valkey8.rdb"), "redis://127.0.0.1:17311")
            #expect(f1.status == 0, "\(f1.stdout) \(f1.stderr)")
            let (f2, _) = try compare("redis://127.0.0.1:17312", TestPaths.fixture("dataset-redis8.rdb"), ["--big-key-threshold", "1"])
            #expect(f2.status == 0, "\(f2.stdout) \(f2.stderr)")
        }
    }

    /// A dump file against the server it was loaded into: exit 0; after one key changes: exit 1
    /// naming that key. Redis 8.2 with hash-field TTLs, through DUMP and through HSCAN.
    @Test func fileAgainstLiveServer() async throws {
        try await offPool { [self] in
            try TestServers.start("lt-h", .redis8, port: 17321, load: TestPaths.fixture("hfe-redis8.rdb"))
            defer { TestServers.stop("lt-h") }
            for extra in [[], ["--big-key-threshold", "1"]] {
                let (r, _) = try compare(TestPaths.fixture("hfe-redis8.rdb"), "redis://127.0.0.1:17321", extra)
                #expect(r.status == 0, "\(extra): \(r.stdout) \(r.stderr)")
            }
            let keys = try TestServers.cli(port: 17321, ["--scan", "--pattern", "hfe:*"]).split(separator: "\n").map(String.init)
            let hashKey = try #require(keys.first { (try? TestServers.cli(port: 17321, ["TYPE", $0]))?.hasPrefix("hash") == true })
            let field = try TestServers.cli(port: 17321, ["HRANDFIELD", hashKey]).trimmingCharacters(in: .whitespacesAndNewlines)
            try TestServers.cli(port: 17321, ["HPEXPIREAT", hashKey, "4200000000000", "FIELDS", "1", field])
            for extra in [[], ["--big-key-threshold", "1"]] {
                let (r, diffs) = try compare(TestPaths.fixture("hfe-redis8.rdb"), "redis://127.0.0.1:17321", extra)
                #expect(r.status == 1)
                #expect(diffs.map(\.displayKey) == [hashKey] && diffs.first?.kind == .value, "\(extra): \(diffs.map(\.displayKey))")
            }
        }
    }

    /// A read-only ACL user is enough; a wrong password is a clear error that never shows it;
    /// a refused connection names the endpoint.
    @Test func aclAndConnectionErrors() async throws {
        try await offPool { [self] in
            try TestServers.start("lt-acl", .redis7, port: 17331, load: TestPaths.fixture("drift-source.rdb"))
            defer { TestServers.stop("lt-acl") }
            try TestServers.cli(port: 17331, ["ACL", "SETUSER", "reader", "on", ">s3cret-pw", "~*", "&*", "-@all", "+@read", "+@connection", "+info"])
            let (ok, _) = try compare("redis://reader:s3cret-pw@127.0.0.1:17331", TestPaths.fixture("drift-source.rdb"), ["--big-key-threshold", "1000"])
            #expect(ok.status == 0, "\(ok.stdout) \(ok.stderr)")
            let (bad, _) = try compare("redis://reader:wrong-pw-123@127.0.0.1:17331", TestPaths.fixture("drift-source.rdb"))
            #expect(bad.status == 2)
            #expect(bad.stderr.lowercased().contains("auth"), "\(bad.stderr)")
            #expect(!bad.stderr.contains("wrong-pw-123") && !bad.stdout.contains("wrong-pw-123"))
            let refused = try slotdiff(["compare", "redis://127.0.0.1:1", TestPaths.fixture("drift-source.rdb"), "--out", path("r.zst")])
            #expect(refused.status == 2 && refused.stderr.contains("127.0.0.1:1"), "\(refused.stderr)")
        }
    }

    /// A server that goes away in the middle of a run: exit 2 naming it, never a pass.
    @Test func serverKilledMidRun() async throws {
        try await offPool { [self] in
            try TestServers.start("lt-kill", .redis7, port: 17341, load: TestPaths.fixture("dataset-redis7.rdb"))
            defer { TestServers.stop("lt-kill") }
            // The run is slowed down (--qps) so that the server can be stopped in the middle of it.
            let box = ResultBox()
            let done = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                box.result = try? slotdiff(
                    [
                        "compare", "redis://127.0.0.1:17341", TestPaths.fixture("dataset-redis7.rdb"),
                        "--out", self.path("k.zst"), "--qps", "300", "--batch", "16"
                    ], timeout: 120)
                done.signal()
            }
            Thread.sleep(forTimeInterval: 1.5)
            TestServers.stop("lt-kill")
            done.wait()
            let r = try #require(box.result)
            let stderr = r.stderr
            #expect(r.status == 2, "\(r.stdout) \(stderr)")
            #expect(stderr.contains("127.0.0.1:17341"))
        }
    }
}

final class ResultBox: @unchecked Sendable { var result: RunResult? }

/// TLS (Debian's Redis 7.0 is built with it): certificates made with openssl; verification is
/// on by default, a CA makes it pass, --tls-insecure skips it.
@Suite(.serialized, .enabled(if: TestServers.available, "server binaries missing: run Scripts/setup"))
struct TLSCompareTests {
    @Test func rediss() async throws {
        try await offPool {
            let dir = TestPaths.temporaryDirectory()
            func p(_ n: String) -> String { dir.appendingPathComponent(n).path }
            func openssl(_ args: [String]) throws {
                let r = try run("/usr/bin/openssl", args)
                if r.status != 0 { throw TestServers.Failure(description: "openssl \(args.first ?? ""): \(r.stderr)") }
            }
            try openssl([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("ca.key"), "-out", p("ca.pem"),
                "-days", "2", "-subj", "/CN=slotdiff test CA"
            ])
            try openssl([
                "req", "-newkey", "rsa:2048", "-nodes", "-keyout", p("server.key"), "-out", p("server.csr"),
                "-subj", "/CN=127.0.0.1"
            ])
            try "subjectAltName=IP:127.0.0.1,DNS:localhost\n".write(toFile: p("ext.cnf"), atomically: true, encoding: .utf8)
            try openssl([
                "x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial",
                "-out", p("server.pem"), "-days", "2", "-extfile", p("ext.cnf")
            ])
            try TestServers.start(
                "tls", .redis7, port: 17351, load: TestPaths.fixture("drift-source.rdb"),
                args: [
                    "--tls-port", "17352", "--tls-cert-file", p("server.pem"), "--tls-key-file", p("server.key"),
                    "--tls-ca-cert-file", p("ca.pem"), "--tls-auth-clients", "no"
                ])
            defer { TestServers.stop("tls") }
            let file = TestPaths.fixture("drift-source.rdb")
            let out = p("t.jsonl.zst")
            let ok = try slotdiff(["compare", file, "rediss://127.0.0.1:17352", "--tls-ca", p("ca.pem"), "--out", out])
            #expect(ok.status == 0, "\(ok.stdout) \(ok.stderr)")
            let unverified = try slotdiff(["compare", file, "rediss://127.0.0.1:17352", "--out", out])
            #expect(unverified.status == 2 && unverified.stderr.lowercased().contains("certificate"), "\(unverified.stderr)")
            let insecure = try slotdiff(["compare", file, "rediss://127.0.0.1:17352", "--tls-insecure", "--out", out])
            #expect(insecure.status == 0, "\(insecure.stderr)")
            let drift = try slotdiff([
                "compare", TestPaths.fixture("drift-target.rdb"), "rediss://localhost:17352",
                "--tls-ca", p("ca.pem"), "--out", out, "--round-delay", "10ms"
            ])
            #expect(drift.status == 1, "\(drift.stderr)")
        }
    }
}
