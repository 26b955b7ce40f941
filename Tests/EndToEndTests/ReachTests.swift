import Foundation
import SlotdiffCore
import TestSupport
import Testing

/// Servers that are there but cannot be reached as announced, or do not answer: a stopped
/// (SIGSTOP) server ends a check within a bound named by `--node-timeout`, with warnings meanwhile,
/// and one that answers again, or restarts, within it is read on;
/// a cluster whose nodes announce addresses this machine cannot reach is checked through
/// `--cluster-address`, and without it fails naming the node and the option.
@Suite(.serialized, .enabled(if: TestServers.available, "server binaries missing: run Scripts/setup"))
struct ReachTests {
    let dir = TestPaths.temporaryDirectory()
    func path(_ n: String) -> String { dir.appendingPathComponent(n).path }

    func args(_ a: String, _ b: String, _ extra: [String]) -> [String] {
        ["compare", a, b, "--out", path("rt-\(UUID().uuidString).jsonl.zst"), "--round-delay", "50ms", "--quiet"] + extra
    }

    static func pid(_ name: String) throws -> pid_t {
        let text = try String(contentsOfFile: TestPaths.root.appendingPathComponent(".servers/\(name)/server.pid").path, encoding: .utf8)
        guard let p = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw TestServers.Failure(description: "no pid for \(name)") }
        return p
    }

    static let fill = "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'k:' .. i, i) redis.call('HSET', 'h:' .. i, 'f', i) end return 1"

    /// A target stopped before the check starts (it accepts connections, the kernel does that,
    /// but never answers): exit 2 within seconds, saying what was expected. Stopped while the
    /// check runs: warned of within a second or two, and exit 2 once it has been silent for
    /// --node-timeout, naming it. Stopped for less than --node-timeout: the check goes on and
    /// is exact.
    @Test func stoppedServerEndsTheCheckInTime() async throws {
        try await offPool { [self] in
            try TestServers.start("rt-src", .valkey8, port: 17620)
            try TestServers.start("rt-dst", .valkey8, port: 17621)
            defer { TestServers.stop("rt-src"); TestServers.stop("rt-dst") }
            for port in [17620, 17621] { try TestServers.cli(port: port, ["EVAL", Self.fill, "0", "3000"]) }
            let stopped = try Self.pid("rt-dst")
            kill(stopped, SIGSTOP)
            defer { kill(stopped, SIGCONT) }
            let start = Date()
            let r = try run(TestPaths.slotdiffBinary, args("redis://127.0.0.1:17620", "redis://127.0.0.1:17621", []), timeout: 120)
            let took = Date().timeIntervalSince(start)
            #expect(r.status == 2, "\(r.status) \(r.stderr)")
            #expect(took < 15, "took \(took) s")
            #expect(r.stderr.contains("127.0.0.1:17621") && r.stderr.contains("sent no RESP reply to HELLO within 5 s"), "\(r.stderr)")
            kill(stopped, SIGCONT)

            // Stopped while its keys are read (slowed down by --qps so that the check is under way).
            let check = try Self.checkUnderWay(
                listingOn: 17621,
                args(
                    "redis://127.0.0.1:17620", "redis://127.0.0.1:17621",
                    ["--node-timeout", "6s", "--qps", "400", "--batch", "20"]))
            kill(stopped, SIGSTOP)
            let midStart = Date()
            let mid = check.wait(timeout: 120)
            let midTook = Date().timeIntervalSince(midStart)
            kill(stopped, SIGCONT)
            #expect(mid.status == 2, "\(mid.status) \(mid.stderr)")
            #expect(midTook >= 5.5 && midTook < 15, "took \(midTook) s after the stop")
            #expect(
                mid.stderr.contains("127.0.0.1:17621") && mid.stderr.contains("no reply for 6 s")
                    && mid.stderr.contains("giving up (--node-timeout 6 s)"),
                "\(mid.stderr)")
            #expect(mid.stderr.contains("warning: no reply for 1.5 s"), "\(mid.stderr)")

            // Answering again: the same check is exact.
            let ok = try run(TestPaths.slotdiffBinary, args("redis://127.0.0.1:17620", "redis://127.0.0.1:17621", []), timeout: 120)
            #expect(ok.status == 0, "\(ok.stderr)")

            // Stopped for 8 s, within --node-timeout: the requests are sent again on new
            // connections until one is answered, the node's listing starts over, and the check
            // is exact.
            let paused = try Self.checkUnderWay(
                listingOn: 17621,
                args(
                    "redis://127.0.0.1:17620", "redis://127.0.0.1:17621",
                    ["--node-timeout", "20s", "--qps", "1500", "--batch", "20"]))
            kill(stopped, SIGSTOP)
            Thread.sleep(forTimeInterval: 8)
            kill(stopped, SIGCONT)
            let resumed = paused.wait(timeout: 180)
            #expect(resumed.status == 0, "\(resumed.status) \(resumed.stderr)")
            #expect(resumed.stderr.contains("warning: no reply for 2 s"), "\(resumed.stderr)")
            #expect(resumed.stderr.contains("listing it again from the start"), "\(resumed.stderr)")
        }
    }

    /// A server killed (kill -9) while it is read and started again 10 s later on the same
    /// port, from its dump: within --node-timeout (30 s by default), so the check waits for it,
    /// lists it again and gives the exact result.
    @Test func serverRestartedTenSecondsLater() async throws {
        try await offPool { [self] in
            try TestServers.start("rt-rs-src", .redis7, port: 17622)
            try TestServers.start("rt-rs-dst", .redis7, port: 17623)
            defer { TestServers.stop("rt-rs-src"); TestServers.stop("rt-rs-dst") }
            for port in [17622, 17623] { try TestServers.cli(port: port, ["EVAL", Self.fill, "0", "3000"]) }
            try TestServers.cli(port: 17622, ["EVAL", Planted.onSource, "0"])
            try TestServers.cli(port: 17623, ["SAVE"])
            let saved = path("rs-saved.rdb")
            try FileManager.default.copyItem(atPath: TestPaths.root.appendingPathComponent(".servers/rt-rs-dst/dump.rdb").path, toPath: saved)
            let log = path("rs.jsonl.zst")
            let check = try Self.checkUnderWay(
                listingOn: 17623,
                [
                    "compare", "redis://127.0.0.1:17622", "redis://127.0.0.1:17623", "--out", log, "--round-delay", "50ms", "--json",
                    "--qps", "1500", "--batch", "20"
                ])
            kill(try Self.pid("rt-rs-dst"), SIGKILL)
            let killed = Date()
            Thread.sleep(forTimeInterval: 10)
            try TestServers.start("rt-rs-dst", .redis7, port: 17623, load: saved)
            let r = try CheckRun.read(check.wait(timeout: 180), log: log)
            #expect(r.foundThePlantedKeys, "\(r.run.status) \(r.kinds) \(r.run.stderr)")
            #expect(r.targetKeys == 6000, "\(r.summary)")
            #expect(r.run.stderr.contains("connecting again for up to 30 s (--node-timeout)"), "\(r.run.stderr)")
            #expect(Date().timeIntervalSince(killed) > 10)
        }
    }

    /// A cluster primary killed (kill -9) while it is read, its replica promoted by the
    /// cluster: the checker finds the node that took over its slots, lists them there from the
    /// start, and the result is exact.
    @Test func failoverToAReplicaMidRun() async throws {
        try await offPool { [self] in
            try TestServers.cluster("rt-fo", .valkey8, base: 17630, n: 3)
            try TestServers.clusterReplica("rt-fo", port: 17633, of: 17630)
            try TestServers.start("rt-fo-dst", .valkey8, port: 17634)
            defer { TestServers.stop("rt-fo"); TestServers.stop("rt-fo-dst") }
            try Planted.fill(cluster: 17631, server: 17634, replicated: 17630)
            let log = path("fo.jsonl.zst")
            let check = try Self.checkUnderWay(
                listingOn: 17630,
                ["compare", "redis://127.0.0.1:17631", "redis://127.0.0.1:17634", "--out", log, "--round-delay", "50ms", "--json", "--qps", "3000"])
            kill(try Self.pid("rt-fo/17630"), SIGKILL)
            let r = try CheckRun.read(check.wait(timeout: 180), log: log)
            #expect(r.foundThePlantedKeys, "\(r.run.status) \(r.kinds) \(r.run.stderr)")
            #expect(r.sourceKeys == 30030, "\(r.summary)")
            #expect(r.run.stderr.contains("the cluster now serves its slots from 127.0.0.1:17633 (failover)"), "\(r.run.stderr)")
        }
    }

    /// `--read-from replica` where a replica is out of sync: a cluster replica whose link to
    /// its primary is down is passed over for the primary (said in a warning), and the result is
    /// exact; a standalone replica that cannot reach its primary is waited for up to
    /// --node-timeout, then the check ends naming it.
    @Test func outOfSyncReplicasAreNotRead() async throws {
        try await offPool { [self] in
            try TestServers.cluster("rt-sync", .redis7, base: 17635, n: 3)
            try TestServers.clusterReplica("rt-sync", port: 17638, of: 17635)
            try TestServers.start("rt-sync-dst", .valkey8, port: 17639)
            try TestServers.start("rt-sync-lone", .valkey8, port: 17640, args: ["--replicaof", "127.0.0.1", "17699"])
            defer { TestServers.stop("rt-sync"); TestServers.stop("rt-sync-dst"); TestServers.stop("rt-sync-lone") }
            try Planted.fill(cluster: 17636, server: 17639, keys: 3000, replicated: 17635)
            // The checker's user everywhere; then the primary's default user gets a password the
            // replica does not know, and the replica's link, cut, cannot come back.
            for port in 17635...17638 { try TestServers.cli(port: port, ["ACL", "SETUSER", "checker", "on", ">pw", "~*", "&*", "+@all"]) }
            try TestServers.cli(port: 17635, ["ACL", "SETUSER", "default", "on", "resetpass", ">secret"])
            try TestServers.cli(port: 17638, ["CLIENT", "KILL", "TYPE", "master"])
            for _ in 0..<100 where try !TestServers.cli(port: 17638, ["INFO", "replication"]).contains("master_link_status:down") {
                Thread.sleep(forTimeInterval: 0.1)
            }
            let log = path("sync.jsonl.zst")
            let r = try CheckRun.read(
                run(
                    TestPaths.slotdiffBinary,
                    [
                        "compare", "redis://checker:pw@127.0.0.1:17636", "redis://127.0.0.1:17639", "--read-from", "replica", "--out", log,
                        "--round-delay", "50ms", "--json"
                    ], timeout: 180), log: log)
            #expect(r.foundThePlantedKeys, "\(r.run.status) \(r.kinds) \(r.run.stderr)")
            // Told by the replica (INFO replication) or, once the cluster noticed, by the cluster map.
            #expect(r.run.stderr.contains("replica 127.0.0.1:17638") && r.run.stderr.contains("is not read: "), "\(r.run.stderr)")
            #expect(r.run.stderr.contains("the primary 127.0.0.1:17635"), "\(r.run.stderr)")

            let start = Date()
            let lone = try run(
                TestPaths.slotdiffBinary, args("redis://127.0.0.1:17640", "redis://127.0.0.1:17639", ["--node-timeout", "3s"]), timeout: 120)
            #expect(lone.status == 2, "\(lone.status) \(lone.stderr)")
            #expect(Date().timeIntervalSince(start) >= 3 && Date().timeIntervalSince(start) < 20)
            #expect(lone.stderr.contains("127.0.0.1:17640 is a replica and its link to its primary is down"), "\(lone.stderr)")
        }
    }

    /// A listener on `port` that accepts every connection and keeps it open: silent, or
    /// sending `answer` (Python bytes-literal text) once the client has written.
    static func listener(port: Int, answer: String?) throws -> Background {
        let reply = answer.map { "    c.recv(4096)\n    c.sendall(b'\($0)')\n" } ?? ""
        let script =
            "import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1', \(port)))\ns.listen(8)\nheld = []\nwhile True:\n    c, _ = s.accept()\n\(reply)    held.append(c)\n"
        let b = try Background("/usr/bin/python3", ["-c", script])
        Thread.sleep(forTimeInterval: 0.5)
        return b
    }

    /// Ports that accept a connection and then say nothing a check can use: a TLS client
    /// (rediss://) on a plain server, and a listener that never answers. Exit 2 within seconds,
    /// saying what was expected.
    @Test func silentPortsAreToldApart() async throws {
        try await offPool { [self] in
            try TestServers.start("rt-plain", .valkey8, port: 17624)
            defer { TestServers.stop("rt-plain") }
            let listener = try Self.listener(port: 17625, answer: nil)
            defer { kill(listener.pid, SIGKILL) }

            var start = Date()
            let tls = try run(TestPaths.slotdiffBinary, args("rediss://127.0.0.1:17624", "redis://127.0.0.1:17624", []), timeout: 60)
            #expect(tls.status == 2, "\(tls.status) \(tls.stderr)")
            #expect(Date().timeIntervalSince(start) < 15)
            #expect(tls.stderr.contains("did not answer the TLS handshake within 5 s") && tls.stderr.contains("use redis://"), "\(tls.stderr)")

            start = Date()
            let mute = try run(TestPaths.slotdiffBinary, args("redis://127.0.0.1:17625", "redis://127.0.0.1:17624", []), timeout: 60)
            #expect(mute.status == 2, "\(mute.status) \(mute.stderr)")
            #expect(Date().timeIntervalSince(start) < 15)
            #expect(mute.stderr.contains("127.0.0.1:17625: the server accepted the connection but sent no RESP reply to HELLO within 5 s"), "\(mute.stderr)")

            // An HTTP server on the port (a proxy, a wrong port): said so, at once.
            let http = try Self.listener(port: 17626, answer: "HTTP/1.1 400 Bad Request\\r\\nContent-Length: 0\\r\\n\\r\\n")
            defer { kill(http.pid, SIGKILL) }
            let web = try run(TestPaths.slotdiffBinary, args("redis://127.0.0.1:17626", "redis://127.0.0.1:17624", []), timeout: 60)
            #expect(web.status == 2, "\(web.status) \(web.stderr)")
            #expect(web.stderr.contains("an HTTP server answered: this port is not a Redis or Valkey server"), "\(web.stderr)")
        }
    }

    /// Starts a check in the background and returns once it lists keys on `port` (a SCAN more
    /// than before), so a server is stopped while it is read, not during the handshake, which a
    /// loaded machine can take a second or more to reach.
    static func checkUnderWay(listingOn port: Int, _ arguments: [String]) throws -> Background {
        let before = try TestServers.calls(port: port, "scan")
        let check = try Background(TestPaths.slotdiffBinary, arguments)
        for _ in 0..<300 where try TestServers.calls(port: port, "scan") <= before { Thread.sleep(forTimeInterval: 0.05) }
        return check
    }

    /// A cluster whose nodes announce hostnames that do not resolve here (as inside a VPC or
    /// Kubernetes): without a map, exit 2 naming the announced node and --cluster-address; with
    /// the map, an exact check, a real difference found.
    @Test func announcedAddressesAreMapped() async throws {
        try await offPool { [self] in
            try TestServers.cluster("rt-cl", .valkey8, base: 17630, n: 3)
            try TestServers.start("rt-plain", .valkey8, port: 17634)
            defer { TestServers.stop("rt-cl"); TestServers.stop("rt-plain") }
            for i in 1...200 {
                try TestServers.cli(port: 17630, ["SET", "k:\(i)", "\(i)"], cluster: true)
                try TestServers.cli(port: 17634, ["SET", "k:\(i)", "\(i)"])
            }
            try TestServers.cli(port: 17634, ["SET", "k:7", "other"])
            for i in 0..<3 {
                try TestServers.cli(port: 17630 + i, ["CONFIG", "SET", "cluster-announce-hostname", "node-\(i).invalid"])
                try TestServers.cli(port: 17630 + i, ["CONFIG", "SET", "cluster-preferred-endpoint-type", "hostname"])
            }
            // Until every node's hostname has reached the seed by gossip.
            for _ in 0..<100 {
                let shards = try TestServers.cli(port: 17630, ["CLUSTER", "SLOTS"])
                if (0..<3).allSatisfy({ shards.contains("node-\($0).invalid") }) { break }
                Thread.sleep(forTimeInterval: 0.1)
            }
            let seed = "redis://127.0.0.1:17630", plain = "redis://127.0.0.1:17634"
            let start = Date()
            let bare = try run(TestPaths.slotdiffBinary, args(plain, seed, []), timeout: 120)
            #expect(bare.status == 2, "\(bare.status) \(bare.stderr)")
            #expect(Date().timeIntervalSince(start) < 30)
            #expect(bare.stderr.contains(".invalid:1763") && bare.stderr.contains("--cluster-address node-"), "\(bare.stderr)")

            // Host names in any case (node 0's written in capitals).
            let map = (0..<3).flatMap { i in
                ["--cluster-address", "\(i == 0 ? "NODE-0.INVALID" : "node-\(i).invalid"):\(17630 + i)=127.0.0.1:\(17630 + i)"]
            }
            let out = path("rt-map.jsonl.zst")
            let mapped = try run(
                TestPaths.slotdiffBinary, ["compare", plain, seed, "--out", out, "--round-delay", "50ms", "--quiet"] + map,
                timeout: 120)
            #expect(mapped.status == 1, "\(mapped.status) \(mapped.stderr)")
            var diffs: [String] = []
            try DiffLogReader(path: out).forEach { diffs.append("\($0.kind.rawValue) \($0.displayKey)") }
            #expect(diffs == ["value k:7"], "\(diffs)")

            let wrong = try run(TestPaths.slotdiffBinary, args(plain, seed, ["--cluster-address", "node-0.invalid=127.0.0.1:1"]), timeout: 60)
            #expect(wrong.status == 2 && wrong.stderr.contains("--cluster-address node-0.invalid=127.0.0.1:1"), "\(wrong.stderr)")
        }
    }
}
